/** The baseline: bare http-proxy with a keep-alive agent, nothing else. `node bare-proxy.js PORT TARGET` */
import { Agent, createServer } from 'node:http';
import HttpProxy from 'http-proxy';

const [port, target] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
const proxy = HttpProxy.createProxyServer({ target, agent });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
createServer((req, res) => proxy.web(req, res)).listen(Number(port), '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
