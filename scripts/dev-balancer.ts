/**
 * FOR DEVELOPMENT ONLY: a round-robin TCP forwarder, the balancer of `npm run start:scaled` when
 * nginx is not installed. `node dist/scripts/dev-balancer.js <port> <host:port>...`. Each client
 * connection goes to the next backend that accepts it; a backend that refuses is skipped. It
 * adds no X-Forwarded-For (it does not read HTTP), so the gateways see 127.0.0.1 as every
 * client, and it has no health checks, limits or TLS: use nginx or HAProxy for anything else.
 */
import { connect, createServer, type Socket } from 'node:net';

const [portText, ...backends] = process.argv.slice(2);
if (!portText || backends.length === 0) {
  console.error('usage: dev-balancer.js <port> <host:port>...');
  process.exit(2);
}
let turn = 0;

function forward(client: Socket, tries: number): void {
  const [host = '', port = ''] = backends[turn % backends.length]!.split(/:(?=\d+$)/);
  turn++;
  const upstream = connect({ host, port: Number(port) });
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    client.pipe(upstream).pipe(client);
    client.resume();
  });
  upstream.once('error', () => {
    if (!connected && tries + 1 < backends.length) return forward(client, tries + 1);
    client.destroy();
  });
  client.once('error', () => upstream.destroy());
  client.once('close', () => upstream.destroy());
}

const server = createServer({ pauseOnConnect: true }, (client) => forward(client, 0));
server.listen(Number(portText), '127.0.0.1', () => {
  console.log(`dev-balancer (FOR DEVELOPMENT ONLY: TCP round robin, no X-Forwarded-For) on 127.0.0.1:${portText} -> ${backends.join(', ')}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
