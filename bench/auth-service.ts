/**
 * The nginx `auth_request` baseline's auth service: the common hand-rolled shape, a Node HTTP
 * server that verifies the JWT on every call and checks revocation and counts a rate limit in
 * one Redis round trip (auto-pipelined). 204 lets the request through, 401 refuses it.
 * `node auth-service.js PORT REDIS_URL` with BENCH_SECRET in the environment.
 */
import { createSecretKey } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';

const [port, redisUrl] = process.argv.slice(2);
// A KeyObject, not the string: jsonwebtoken 9 turns a string into a key on every call (~400 µs).
const secret = createSecretKey(Buffer.from(process.env.BENCH_SECRET ?? ''));
const redis = new Redis(redisUrl!, { enableAutoPipelining: true });
const LIMIT_PER_MINUTE = 1_000_000_000;

createServer((req, res) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  let claims: jwt.JwtPayload;
  try {
    claims = jwt.verify(token ?? '', secret, { algorithms: ['HS256'], issuer: 'bench-issuer', audience: 'api' }) as jwt.JwtPayload;
  } catch {
    res.writeHead(401).end();
    return;
  }
  const minute = Math.floor(Date.now() / 60_000);
  const counter = `nginx-baseline:rl:${claims.sub}:${minute}`;
  Promise.all([redis.exists(`nginx-baseline:revoked:${claims.jti}`), redis.incr(counter)]).then(
    ([revoked, count]) => {
      if (count === 1) void redis.expire(counter, 61);
      res.writeHead(revoked || count > LIMIT_PER_MINUTE ? 401 : 204).end();
    },
    () => res.writeHead(500).end(),
  );
}).listen(Number(port), '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
