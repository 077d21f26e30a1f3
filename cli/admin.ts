/**
 * The operator's CLI for security state: `npm run admin -- <command>`.
 * Writes Redis through common/security-state.ts, so every key comes from RedisKeys; every ban,
 * unban and revocation is then published as a security event (cli/admin/audited.ts).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import { loadConfig } from '../common/config/load.js';
import { HMAC_ALGORITHMS, type GatewayConfig } from '../common/config/schema.js';
import { withDemoDefaults } from '../common/demo.js';
import { connectFailFast } from '../common/redis.js';
import { conflictingRedisTargets, redisEnvSchema, redisTarget, type RedisTarget } from '../common/redis-target.js';
import { RedisKeys } from '../common/redis-keys.js';
import { NotAuditedError } from './admin/audited.js';
import { bansCommand, type BansAction, type BansRun } from './admin/bans.js';
import { keysCommand } from './admin/keys.js';
import { LIMITS_ACTIONS, limitsCommand, type LimitsAction } from './admin/limits.js';
import { revokeCommand } from './admin/revoke.js';
import { USERS_ACTIONS, usersCommand, type UsersAction } from './admin/users.js';
import { duration, OPTIONS, UsageError, type Options } from './admin/usage.js';
import { retryFailedAuditJobs } from './retry-failed.js';

const USAGE = `usage: admin <command> [options]

commands:
  token   --sub SUB [--issuer NAME] [--groups a,b] [--tier NAME] [--ttl 15m]
          mint a token with an HMAC issuer's secret (development and tests)
  bans list [--json]
          every active ban: ip, consumer and jti (revoked tokens), with reason, by, since, until
  bans add    --ip IP | --consumer ISSUER:SUB | --jti ID [--ttl 1h] --reason TEXT
          ban until lifted, or for --ttl; a banned jti is a revoked token (401 token_revoked)
  bans remove --ip IP | --consumer ISSUER:SUB | --jti ID --reason TEXT
          lift a ban (a subject that was not banned is left alone, and nothing is audited)
  revoke  --token JWT | --jti ID [--ttl 1d] | --consumer ISSUER:SUB | --kid KID [--ttl 1d] [--reason TEXT]
          revoke one token until it expires, every token of a consumer issued so far, or every
          token a key signed (--kid, until lifted or --ttl; never the current signing key)
          (--consumer returns once the current second has ended: tokens carry whole-second
          iat, so the whole second is revoked; a token issued after it returns is valid)
  ban     --ip IP | --consumer ISSUER:SUB | --jti ID [--ttl 1h] [--reason TEXT]
  unban   --ip IP | --consumer ISSUER:SUB | --jti ID [--reason TEXT]
          older spellings of bans add / bans remove; --reason defaults to "manual"
  users add USERNAME [--groups a,b] [--tier NAME] | users set-password USERNAME   [--reason TEXT]
          a user of the sidecar's own issuer (token_issuing); the password is read from stdin,
          typed without echo or piped, never an argument; 8 characters to 72 bytes
  users disable USERNAME | users enable USERNAME [--reason TEXT] | users list [--json]
          set-password and disable end the user's logins and revoke its tokens issued so far;
          every change is audited (user_add, user_enable, revoke), --reason defaulting to what it did
  keys rotate | keys list [--json]
          a new current signing key (SIGNING_KEY_SECRET needed); the old one verifies its
          tokens until they expire, and keys retired longer ago are deleted
  limits set --consumer ISSUER:SUB (--scale N | [--second N] [--minute N] [--hour N] [--day N]
             [--algorithm fixed|sliding|gcra] [--burst N]) --reason TEXT
          the consumer's own rate limit in place of its tier's: --scale multiplies the tier's
          windows (a partner gets 10x), or windows of its own; every sidecar applies it within a
          second; wins over the config's limit_overrides
  limits clear --consumer ISSUER:SUB --reason TEXT | limits list [--json]
  audit retry-failed
          put every audit job in \`failed\` back in the queue (their events are stored again)

  Every ban, unban, revocation and limits set/clear is audited: a security event (kind, actor admin-cli:<os user>,
  subject, reason, until) is published on the audit queue after the change; \`npm run audit --
  security\` shows them. If publishing fails the change stays, the CLI says it was NOT AUDITED and
  exits 1. A reason is one line of at most 500 characters and must not contain a token.
  IP is IPv4 or IPv6 in any spelling (2001:DB8::1 is 2001:db8::1; ::ffff:1.2.3.4 is 1.2.3.4).
  ISSUER is the name of an issuer in the config; SUB the token's sub.

environment: GATEWAY_CONFIG, SIGNING_KEY_SECRET (keys rotate), REDIS_URL (or REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_PASSWORD; or REDIS_CLUSTER_NODES, REDIS_PASSWORD), REDIS_PREFIX (as the processes read them)
exit codes: 0 ok, 1 failure (or done but not audited), 2 bad usage`;

/** The reason the older `ban` / `unban` record when --reason is not given. */
const LEGACY_REASON = 'manual';

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
  const config = (): GatewayConfig => loadConfig(env.GATEWAY_CONFIG ?? 'config/gateway.yml', env);
  // Validated before connecting: bad usage never touches Redis.
  const run = commandOf(command, rest, options, config);
  if (typeof run === 'string') return void console.log(run);
  const redis = connectFailFast(redisTargetOf(env), { maxRetriesPerRequest: 2 });
  const keys = RedisKeys.of(env.REDIS_PREFIX ?? 'gw', redis);
  try {
    await run(redis, keys);
  } finally {
    redis.disconnect();
  }
}

/** The command's validated run, or (token) its output. */
function commandOf(command: string, rest: string[], options: Options, config: () => GatewayConfig): BansRun | string {
  if (command === 'users') {
    const [action, ...args] = rest;
    if (!(USERS_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`unknown users command ${action ?? '(none)'}: use users ${USERS_ACTIONS.join('|')}`);
    return usersCommand(action as UsersAction, args, options, config);
  }
  if (command === 'limits') {
    const [action, ...extra] = rest;
    if (!(LIMITS_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`unknown limits command ${action ?? '(none)'}: use limits ${LIMITS_ACTIONS.join('|')}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
    return limitsCommand(action as LimitsAction, options, config);
  }
  if (command === 'keys') return keysCommand(rest[0], rest.slice(1), options, config, withDemoDefaults(process.env));
  if (command === 'bans') {
    const [action, ...extra] = rest;
    if (action !== 'list' && action !== 'add' && action !== 'remove') throw new UsageError(`unknown bans command ${action ?? '(none)'}: use bans list, bans add or bans remove`);
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
    return bansCommand(action as BansAction, options, config);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
  if (command === 'token') return mintToken(options, config(), withDemoDefaults(process.env));
  if (command === 'revoke') return revokeCommand(options, config);
  if (command === 'ban') return bansCommand('add', options, config, LEGACY_REASON);
  if (command === 'unban') return bansCommand('remove', options, config, LEGACY_REASON);
  throw new UsageError(`unknown command ${command}`);
}

/** REDIS_URL, the Sentinel or the Cluster variables, as the processes read them (common/redis-target.ts). */
function redisTargetOf(env: NodeJS.ProcessEnv): RedisTarget {
  const parsed = redisEnvSchema.safeParse(env);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const conflict = conflictingRedisTargets(parsed.data);
  if (conflict) throw new UsageError(conflict);
  return redisTarget(parsed.data);
}

async function auditCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (args.length !== 1 || args[0] !== 'retry-failed') throw new UsageError(`unknown audit command ${args.join(' ') || '(none)'}: use audit retry-failed`);
  const retried = await retryFailedAuditJobs(redisTargetOf(env), env.REDIS_PREFIX ?? 'gw');
  console.log(`re-queued ${retried} failed audit job${retried === 1 ? '' : 's'}`);
}

/** The first HMAC key of an issuer (on the issuer, or in its `keys`), with its kid. */
function hmacKeyOf(issuer: GatewayConfig['issuers'][number]): { secret_env: string; secret_encoding: 'utf8' | 'base64' | undefined; kid: string | undefined } | undefined {
  const source = issuer.secret_env !== undefined ? { ...issuer, kid: undefined } : issuer.keys?.find((k) => k.secret_env !== undefined);
  return source?.secret_env === undefined ? undefined : { secret_env: source.secret_env, secret_encoding: source.secret_encoding, kid: source.kid };
}

function mintToken(options: Options, config: GatewayConfig, env: NodeJS.ProcessEnv): string {
  if (!options.sub) throw new UsageError('token needs --sub');
  const issuer = options.issuer ? config.issuers.find((i) => i.name === options.issuer) : config.issuers.find((i) => hmacKeyOf(i));
  const hmac = issuer && hmacKeyOf(issuer);
  const algorithm = issuer?.algorithms.find((a): a is (typeof HMAC_ALGORITHMS)[number] => (HMAC_ALGORITHMS as readonly string[]).includes(a));
  if (!issuer || !hmac || !algorithm) throw new UsageError(`no HMAC issuer ${options.issuer ?? ''} in the config`);
  const secret = env[hmac.secret_env];
  if (!secret) throw new Error(`${hmac.secret_env} is not set`);
  const ttl = options.ttl ?? '15m';
  if (duration(ttl) > issuer.max_lifetime) throw new UsageError(`--ttl ${ttl} is longer than issuer ${issuer.name}'s max_lifetime (${issuer.max_lifetime} s)`);
  const audience = Array.isArray(issuer.audience) ? issuer.audience[0] : issuer.audience;
  const claims: Record<string, unknown> = { sub: options.sub, jti: randomUUID() };
  if (options.groups) claims[issuer.groups_claim] = options.groups.split(',').filter(Boolean);
  if (options.tier) claims[issuer.tier_claim] = options.tier;
  return jwt.sign(claims, hmac.secret_encoding === 'base64' ? Buffer.from(secret, 'base64') : secret, {
    algorithm,
    issuer: issuer.iss,
    expiresIn: duration(ttl),
    ...(hmac.kid ? { keyid: hmac.kid } : {}),
    ...(audience ? { audience } : {}),
  });
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`admin: ${err.message}`);
  if (err instanceof UsageError) console.error(USAGE);
  if (err instanceof NotAuditedError) console.error('admin: record this change by hand, or lift it and do it again');
  process.exit(err instanceof UsageError ? 2 : 1);
});
