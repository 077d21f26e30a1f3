/**
 * The security state the sidecar enforces: revocations and bans, written by the admin CLI and
 * the audit worker's automatic bans, listed by `admin bans list`; all keys come from RedisKeys.
 * A ban key (and a revoked jti key) holds JSON {reason, at, by}; the sidecar only checks that
 * it exists, so its value is for people.
 *
 * Every write of a ban, revoked jti, consumer revocation or revoked kid announces the key on
 * `keys.securityChannel`, in the same script as the write (both or neither), so sidecars on a
 * Redis Cluster, which keep a local copy of ip bans and revoked jtis
 * (auth-sidecar/limiter/ban-mirror.ts), and gateways holding WebSockets open
 * (gateway/websocket/security-watch.ts) re-read it at once.
 */
import { scanKeys, type RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

/** SET (with a ttl in seconds when ARGV[3] is not '') and PUBLISH the key name, atomically. */
const SET_AND_ANNOUNCE = `
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) end
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1`;

/** DEL and, when there was a key, PUBLISH its name, atomically. Returns 1 when it deleted. */
const DEL_AND_ANNOUNCE = `
local deleted = redis.call('DEL', KEYS[1])
if deleted == 1 then redis.call('PUBLISH', ARGV[1], KEYS[1]) end
return deleted`;

function setAndAnnounce(redis: RedisClient, keys: RedisKeys, key: string, value: string, ttlSeconds: number | undefined): Promise<unknown> {
  return redis.eval(SET_AND_ANNOUNCE, 1, key, value, keys.securityChannel, ttlSeconds === undefined ? '' : String(ttlSeconds));
}

/** What a ban key holds. `by` is the actor (absent in keys written before it was kept). */
export interface BanRecord {
  reason: string;
  at: string;
  by?: string;
}

function record(reason: string, by: string | undefined): string {
  const value: BanRecord = { reason, at: new Date().toISOString(), ...(by === undefined ? {} : { by }) };
  return JSON.stringify(value);
}

/**
 * Revokes one token id until `untilSeconds` (the token's exp), after which it is dead anyway.
 * Resolves the ttl written, in seconds.
 */
export async function revokeJti(redis: RedisClient, keys: RedisKeys, jti: string, untilSeconds: number, reason = 'revoked', by?: string): Promise<number> {
  const ttl = Math.max(1, Math.ceil(untilSeconds - Date.now() / 1000));
  await setAndAnnounce(redis, keys, keys.revokedJti(jti), record(reason, by), ttl);
  return ttl;
}

/**
 * Revokes every token of a consumer issued up to now. A token's iat is whole seconds, so the
 * revocation covers the whole current second (the sidecar refuses iat <= the stored second), and
 * this resolves only once that second has ended: a token issued after it resolves is not revoked.
 * Resolves the revoked second.
 */
export async function revokeConsumer(redis: RedisClient, keys: RedisKeys, consumer: string, now: () => number = Date.now): Promise<number> {
  const second = Math.floor(now() / 1000);
  await setAndAnnounce(redis, keys, keys.revokedConsumer(consumer), String(second), undefined);
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

/** Bans an ip, a consumer or a token id, for `ttlSeconds` or (undefined) until lifted; `by` is the actor. */
export async function ban(redis: RedisClient, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds?: number, by?: string): Promise<void> {
  await setAndAnnounce(redis, keys, banKey(keys, target), record(reason, by), ttlSeconds);
}

/** Whether an ip, a consumer or a token id is banned (revoked) now. */
export async function isBanned(redis: RedisClient, keys: RedisKeys, target: BanTarget): Promise<boolean> {
  return (await redis.exists(banKey(keys, target))) === 1;
}

export async function unban(redis: RedisClient, keys: RedisKeys, target: BanTarget): Promise<boolean> {
  return (await redis.eval(DEL_AND_ANNOUNCE, 1, banKey(keys, target), keys.securityChannel)) === 1;
}

/**
 * The automatic bans' write: bans for `ttlSeconds` unless the target is already banned for
 * longer (or until lifted), so a rule's 10-minute ban never shortens an operator's permanent
 * ban or a token's longer revocation. Resolves whether it wrote.
 */
export async function banAtLeast(redis: RedisClient, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds: number, by?: string): Promise<boolean> {
  return (await redis.eval(BAN_AT_LEAST, 1, banKey(keys, target), record(reason, by), ttlSeconds, keys.securityChannel)) === 1;
}

const BAN_AT_LEAST = `
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left > tonumber(ARGV[2]) * 1000 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1`;

/** One active ban as `admin bans list` shows it. */
export interface ActiveBan {
  kind: 'ip' | 'consumer' | 'jti';
  subject: string;
  /** null when the key holds no record (a jti revoked before records were kept). */
  reason: string | null;
  by: string | null;
  /** When it was written (ISO), null when unknown. */
  since: string | null;
  /** When it ends (ISO, from the key's ttl); null: until lifted. */
  until: string | null;
}

function parseRecord(value: string | null): Partial<BanRecord> {
  try {
    const parsed = JSON.parse(value ?? '') as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Partial<BanRecord>) : {};
  } catch {
    return {};
  }
}

const textOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * Every active ban: ip bans, consumer bans and revoked token ids, found with SCAN, each read
 * with its ttl. Sorted by kind, then subject.
 */
export async function listBans(redis: RedisClient, keys: RedisKeys, now: () => number = Date.now): Promise<ActiveBan[]> {
  const bans: ActiveBan[] = [];
  for (const pattern of keys.banPatterns()) {
    const names = await scanKeys(redis, pattern.match);
    // One command per key (a cluster routes each to its slot's master; ioredis still writes them together).
    const replies = await Promise.all(names.map((key) => Promise.all([redis.get(key), redis.pttl(key)])));
    const at = now();
    names.forEach((key, i) => {
      const [value, pttl] = replies[i]!;
      if (value === null || pttl === -2) return; // expired or lifted between SCAN and GET
      const rec = parseRecord(value);
      bans.push({
        kind: pattern.kind,
        subject: pattern.subjectOf(key),
        reason: textOrNull(rec.reason),
        by: textOrNull(rec.by),
        since: textOrNull(rec.at),
        until: pttl >= 0 ? new Date(at + pttl).toISOString() : null,
      });
    });
  }
  const order = { ip: 0, consumer: 1, jti: 2 } as const;
  return bans.sort((a, b) => order[a.kind] - order[b.kind] || a.subject.localeCompare(b.subject));
}

/** HSET kid -> until (unix ms, 0: until lifted) and PUBLISH the key name, atomically; drops the entries that have ended (ARGV[4] now). */
const REVOKE_KID = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local untilMs = tonumber(all[i + 1])
  if untilMs ~= 0 and untilMs <= tonumber(ARGV[4]) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1`;

/**
 * Revokes every token signed by the key `kid` (any issuer's), until `untilMs` (unix ms) or, when
 * undefined, until lifted. Sidecars read the revoked kids every 500 ms (auth-sidecar/jwt/revoked-kids.ts).
 */
export async function revokeKid(redis: RedisClient, keys: RedisKeys, kid: string, untilMs: number | undefined, now = Date.now()): Promise<void> {
  await redis.eval(REVOKE_KID, 1, keys.revokedKids, kid, String(untilMs ?? 0), keys.securityChannel, String(now));
}

/** The revoked kids in force at `now`, each with its end (unix ms; Infinity: until lifted). */
export async function revokedKids(redis: RedisClient, keys: RedisKeys, now = Date.now()): Promise<Map<string, number>> {
  const fields = await redis.hgetall(keys.revokedKids);
  const kids = new Map<string, number>();
  for (const [kid, until] of Object.entries(fields)) {
    const end = Number(until) === 0 ? Infinity : Number(until);
    if (end > now) kids.set(kid, end);
  }
  return kids;
}
