/**
 * The operator's CLI for security state: `npm run admin -- <command>`.
 * Writes Redis through common/security-state.ts, so every key comes from RedisKeys.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { loadConfig } from '../common/config/load.js';
import type { GatewayConfig } from '../common/config/schema.js';
import { withDemoDefaults } from '../common/demo.js';
import { parseDuration } from '../common/duration.js';
import { canonicalIp } from '../common/ip-address.js';
import { connectFailFast } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import { retryFailedAuditJobs } from './retry-failed.js';
import { ban, revokeConsumer, revokeJti, unban, type BanTarget } from '../common/security-state.js';

const USAGE = `usage: admin <command> [options]

commands:
  token   --sub SUB [--issuer NAME] [--groups a,b] [--tier NAME] [--ttl 15m]
          mint a token with an HMAC issuer's secret (development and tests)
  revoke  --token JWT | --jti ID [--ttl 1d] | --consumer ISSUER:SUB
          revoke one token until it expires, or every token of a consumer issued so far
          (--consumer returns once the current second has ended: tokens carry whole-second
          iat, so the whole second is revoked; a token issued after it returns is valid)
  ban     --ip IP | --consumer ISSUER:SUB [--ttl 1h] [--reason TEXT]
  unban   --ip IP | --consumer ISSUER:SUB
  audit retry-failed
          put every audit job in \`failed\` back in the queue (their events are stored again)

  IP is IPv4 or IPv6 in any spelling (2001:DB8::1 is 2001:db8::1; ::ffff:1.2.3.4 is 1.2.3.4).
  ISSUER is the name of an issuer in the config; SUB the token's sub.

environment: GATEWAY_CONFIG, REDIS_URL, REDIS_PREFIX (as the processes read them)
exit codes: 0 ok, 1 failure, 2 bad usage`;

class UsageError extends Error {}

const OPTIONS = {
  sub: { type: 'string' },
  issuer: { type: 'string' },
  groups: { type: 'string' },
  tier: { type: 'string' },
  ttl: { type: 'string' },
  token: { type: 'string' },
  jti: { type: 'string' },
  consumer: { type: 'string' },
  ip: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [command, ...rest] = parsed.positionals;
  const options = parsed.values as Options;
  if (options.help || !command) return void console.log(USAGE);
  const env = withDemoDefaults(process.env);
  if (command === 'audit') return auditCommand(rest, env);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
  if (command === 'token') return void console.log(mintToken(options, env));
  if (!['revoke', 'ban', 'unban'].includes(command)) throw new UsageError(`unknown command ${command}`);

  const config = loadConfig(env.GATEWAY_CONFIG ?? 'config/gateway.yml', env);
  // Validated before connecting: bad usage never touches Redis.
  const target = command === 'revoke' ? undefined : banTarget(options, config);
  if (command === 'revoke' && options.consumer) consumerOf(options.consumer, config);
  const redis = connectFailFast(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2 });
  const keys = new RedisKeys(env.REDIS_PREFIX ?? 'gw');
  try {
    if (!target) await revoke(redis, keys, options);
    else if (command === 'ban') {
      const ttl = options.ttl === undefined ? undefined : duration(options.ttl);
      await ban(redis, keys, target, options.reason ?? 'manual', ttl);
      console.log(`banned ${describe(target)}${ttl ? ` for ${ttl}s` : ''}`);
    } else {
      const lifted = await unban(redis, keys, target);
      console.log(lifted ? `unbanned ${describe(target)}` : `${describe(target)} was not banned`);
    }
  } finally {
    redis.disconnect();
  }
}

async function auditCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (args.length !== 1 || args[0] !== 'retry-failed') throw new UsageError(`unknown audit command ${args.join(' ') || '(none)'}: use audit retry-failed`);
  const retried = await retryFailedAuditJobs(env.REDIS_URL ?? 'redis://127.0.0.1:6379', env.REDIS_PREFIX ?? 'gw');
  console.log(`re-queued ${retried} failed audit job${retried === 1 ? '' : 's'}`);
}

function mintToken(options: Options, env: NodeJS.ProcessEnv): string {
  if (!options.sub) throw new UsageError('token needs --sub');
  const config = loadConfig(env.GATEWAY_CONFIG ?? 'config/gateway.yml', env);
  const issuer = options.issuer ? config.issuers.find((i) => i.name === options.issuer) : config.issuers.find((i) => i.secret_env);
  if (!issuer?.secret_env) throw new UsageError(`no HMAC issuer ${options.issuer ?? ''} in the config`);
  const secret = env[issuer.secret_env];
  if (!secret) throw new Error(`${issuer.secret_env} is not set`);
  const ttl = options.ttl ?? '15m';
  if (duration(ttl) > issuer.max_lifetime) throw new UsageError(`--ttl ${ttl} is longer than issuer ${issuer.name}'s max_lifetime (${issuer.max_lifetime} s)`);
  const audience = Array.isArray(issuer.audience) ? issuer.audience[0] : issuer.audience;
  const claims: Record<string, unknown> = { sub: options.sub, jti: randomUUID() };
  if (options.groups) claims[issuer.groups_claim] = options.groups.split(',').filter(Boolean);
  if (options.tier) claims[issuer.tier_claim] = options.tier;
  return jwt.sign(claims, secret, {
    algorithm: issuer.algorithms[0],
    issuer: issuer.iss,
    expiresIn: duration(ttl),
    ...(audience ? { audience } : {}),
  });
}

async function revoke(redis: Redis, keys: RedisKeys, options: Options): Promise<void> {
  if (options.consumer) {
    const second = await revokeConsumer(redis, keys, options.consumer);
    return void console.log(`revoked every token of ${options.consumer} issued until now (iat <= ${second})`);
  }
  let jti = options.jti;
  let exp = Date.now() / 1000 + duration(options.ttl ?? '1d');
  if (options.token) {
    const payload = jwt.decode(options.token, { json: true });
    if (!payload || typeof payload.jti !== 'string') throw new UsageError('--token is not a JWT with a jti');
    jti = payload.jti;
    if (typeof payload.exp === 'number') exp = payload.exp;
  }
  if (!jti) throw new UsageError('revoke needs --token, --jti or --consumer');
  await revokeJti(redis, keys, jti, exp);
  console.log(`revoked jti ${jti} until ${new Date(exp * 1000).toISOString()}`);
}

function banTarget(options: Options, config: GatewayConfig): BanTarget {
  if (options.ip !== undefined && options.consumer === undefined) {
    const ip = canonicalIp(options.ip);
    if (!ip) throw new UsageError(`--ip ${options.ip} is not an IPv4 or IPv6 address`);
    return { ip };
  }
  if (options.consumer !== undefined && options.ip === undefined) return { consumer: consumerOf(options.consumer, config) };
  throw new UsageError('give exactly one of --ip, --consumer');
}

/** `<issuer>:<sub>` with a configured issuer: the consumer id the sidecar keys bans and revocations on. */
function consumerOf(text: string, config: GatewayConfig): string {
  const colon = text.indexOf(':');
  const issuer = colon > 0 ? text.slice(0, colon) : undefined;
  const names = config.issuers.map((i) => i.name);
  if (!issuer || !names.includes(issuer) || colon === text.length - 1) {
    throw new UsageError(`--consumer ${text} must be <issuer>:<sub> with a configured issuer (${names.join(', ') || 'none configured'})`);
  }
  return text;
}

function describe(target: BanTarget): string {
  if ('ip' in target) return `ip ${target.ip}`;
  return 'consumer' in target ? `consumer ${target.consumer}` : `jti ${target.jti}`;
}

function duration(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds === 0) throw new UsageError(`bad duration ${text}: use e.g. 90s, 15m, 1h, 7d`);
  return seconds;
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`admin: ${err.message}`);
  if (err instanceof UsageError) console.error(USAGE);
  process.exit(err instanceof UsageError ? 2 : 1);
});
