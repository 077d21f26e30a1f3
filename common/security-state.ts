/**
 * The security state the sidecar enforces: revocations and bans, written by the admin CLI and
 * the audit worker's automatic bans, listed by `admin bans list`; all keys come from RedisKeys.
 * A ban key (and a revoked jti key) holds JSON {reason, at, by}; the sidecar only checks that
 * it exists, so its value is for people.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';

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
export async function revokeJti(redis: Redis, keys: RedisKeys, jti: string, untilSeconds: number, reason = 'revoked', by?: string): Promise<number> {
  const ttl = Math.max(1, Math.ceil(untilSeconds - Date.now() / 1000));
  await redis.set(keys.revokedJti(jti), record(reason, by), 'EX', ttl);
  return ttl;
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

/** Bans an ip, a consumer or a token id, for `ttlSeconds` or (undefined) until lifted; `by` is the actor. */
export async function ban(redis: Redis, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds?: number, by?: string): Promise<void> {
  const key = banKey(keys, target);
  const value = record(reason, by);
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
export async function banAtLeast(redis: Redis, keys: RedisKeys, target: BanTarget, reason: string, ttlSeconds: number, by?: string): Promise<boolean> {
  return (await redis.eval(BAN_AT_LEAST, 1, banKey(keys, target), record(reason, by), ttlSeconds)) === 1;
}

const BAN_AT_LEAST = `
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left > tonumber(ARGV[2]) * 1000 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
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
 * Every active ban: ip bans, consumer bans and revoked token ids, found with SCAN (never KEYS,
 * which blocks Redis), each read with its ttl. Sorted by kind, then subject.
 */
export async function listBans(redis: Redis, keys: RedisKeys, now: () => number = Date.now): Promise<ActiveBan[]> {
  const bans: ActiveBan[] = [];
  for (const pattern of keys.banPatterns()) {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', pattern.match, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) found.add(key);
    } while (cursor !== '0');
    const names = [...found];
    if (names.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of names) pipeline.get(key).pttl(key);
    const replies = (await pipeline.exec()) ?? [];
    const at = now();
    names.forEach((key, i) => {
      const value = replies[2 * i]?.[1] as string | null;
      const pttl = replies[2 * i + 1]?.[1] as number;
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
