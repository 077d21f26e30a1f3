/**
 * The demo upstream `npm start` runs behind the gateway: answers every request with what it
 * received (method, path, the identity headers the gateway added), as JSON.
 */
import { createServer } from 'node:http';

const port = Number(process.env.DEMO_UPSTREAM_PORT ?? 3001);
const host = process.env.DEMO_UPSTREAM_HOST ?? '127.0.0.1';

const server = createServer((req, res) => {
  const body = JSON.stringify({
    upstream: 'demo',
    method: req.method,
    url: req.url,
    consumer: {
      id: req.headers['x-consumer-id'] ?? null,
      username: req.headers['x-consumer-username'] ?? null,
      groups: req.headers['x-consumer-groups'] ?? null,
    },
    request_id: req.headers['x-request-id'] ?? null,
  });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(port, host, () => console.log(JSON.stringify({ service: 'demo-upstream', message: 'ready', port })));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
process.once('SIGINT', () => server.close(() => process.exit(0)));
