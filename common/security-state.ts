/**
 * Writes of the security state the sidecar enforces: revocations and bans. The admin CLI uses
 * these today, the audit worker's automatic blocks tomorrow; all keys come from RedisKeys.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';

/** Revokes one token id until `untilSeconds` (the token's exp), after which it is dead anyway. */
export async function revokeJti(redis: Redis, keys: RedisKeys, jti: string, untilSeconds: number): Promise<void> {
  const ttl = Math.max(1, Math.ceil(untilSeconds - Date.now() / 1000));
  await redis.set(keys.revokedJti(jti), '1', 'EX', ttl);
}

/**
 * Revokes every token of a consumer issued up to now. A token's iat is whole seconds, so the
 * revocation covers the whole current second (the sidecar refuses iat <= the stored second), and
 * this resolves only once that second has ended: a token issued after it resolves is not revoked.
 * Resolves the revoked second.
 */
export async function revokeConsumer(redis: Redis, keys: RedisKeys, consumer: string, now: () => number = Date.now): Promise<number> {
  const second = Math.floor(now() / 1000);
  await redis.set(keys.revokedConsumer(consumer), String(second));
  for (let rest = (second + 1) * 1000 - now(); rest > 0; rest = (second + 1) * 1000 - now()) {
    await new Promise((resolve) => setTimeout(resolve, rest));
  }
  return second;
}

/** What a ban can name. A banned jti is a revoked token: the sidecar answers 401 token_revoked. */
export type BanTarget = { ip: string } | { consumer: string } | { jti: string };

function banKey(keys: RedisKeys, target: BanTarget): string {
  if ('ip' in target) return keys.banIp(target.ip);
  if ('consumer' in target) return keys.banConsumer(target.consumer);
  return keys.revokedJti(target.jti);
}

/** Bans an ip, a consumer or a token id, for `ttlSeconds` or (undefined) until lifted. */
export async function ban(redis: Redis, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds?: number): Promise<void> {
  const key = banKey(keys, target);
  const value = JSON.stringify({ reason, at: new Date().toISOString() });
  if (ttlSeconds === undefined) await redis.set(key, value);
  else await redis.set(key, value, 'EX', ttlSeconds);
}

export async function unban(redis: Redis, keys: RedisKeys, target: BanTarget): Promise<boolean> {
  return (await redis.del(banKey(keys, target))) === 1;
}

/**
 * The automatic bans' write: bans for `ttlSeconds` unless the target is already banned for
 * longer (or until lifted), so a rule's 10-minute ban never shortens an operator's permanent
 * ban or a token's longer revocation. Resolves whether it wrote.
 */
export async function banAtLeast(redis: Redis, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds: number): Promise<boolean> {
  const value = JSON.stringify({ reason, at: new Date().toISOString() });
  return (await redis.eval(BAN_AT_LEAST, 1, banKey(keys, target), value, ttlSeconds)) === 1;
}

const BAN_AT_LEAST = `
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left > tonumber(ARGV[2]) * 1000 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1`;
