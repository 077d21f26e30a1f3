/** The bench's one issuer, its tokens and the stack config every bench part runs with. */
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';

/** The HMAC secret of the bench issuer (BENCH_SECRET in the sidecar's environment). */
export const BENCH_SECRET = 'bench-secret-that-is-long-enough-0123456789';

/** A token of the bench issuer for `sub`, valid for an hour. */
export function benchToken(sub: string): string {
  return jwt.sign({ sub, jti: randomUUID() }, BENCH_SECRET, { algorithm: 'HS256', issuer: 'bench-issuer', audience: 'api', expiresIn: '1h' });
}

/**
 * The bench's gateway.yml: one route to `upstreamUrl` needing a token, counted against a
 * two-window tier so high it never refuses (every decision checks and counts), and the same
 * under /pool through a pool of two targets (both `upstreamUrl`, spelled two ways), to price the
 * pool. `gateway` is the `gateway:` settings as a YAML flow mapping, if any.
 */
export function benchConfig(upstreamUrl: string, gateway?: string, tier = '{ second: 1000000000, minute: 1000000000 }'): string {
  return `issuers:
  - { name: bench, iss: bench-issuer, audience: api, algorithms: [HS256], secret_env: BENCH_SECRET }
tiers:
  bench: ${tier}
default_tiers: { authenticated: bench }
upstreams:
  - { name: pair, targets: [{ url: "${upstreamUrl}" }, { url: "${upstreamUrl}/" }] }
${gateway ? `gateway: ${gateway}\n` : ''}routes:
  - { name: api, paths: [/], upstream: "${upstreamUrl}", auth: required, rate_limit: { by: consumer } }
  - { name: pooled, paths: [/pool], upstream: pair, auth: required, rate_limit: { by: consumer } }
`;
}
