/**
 * Refresh tokens (RFC 9700 §4.14): opaque, `<family>.<secret>` (16 and 32 random bytes,
 * base64url), one family per login. Redis keeps only SHA-256 hashes: the family's current token,
 * the tokens it has rotated out, its user, its creation time and its last access token.
 * A refresh rotates the family's token; presenting a rotated-out token again is reuse: the
 * whole family is revoked (and the caller revokes its last access token). Two refreshes racing
 * with the same token are reuse as well: the loser revokes the family (documented).
 * Every write renews the family's ttl to the refresh token lifetime, so a family lives as long as
 * its newest token; a revoked family is kept until then, so its tokens stay known as reused.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';

const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export interface Family {
  id: string;
  user: string;
  /** Unix ms of the login. */
  created: number;
}

/** The family's last access token, revoked with it on reuse. */
export interface LastAccess {
  jti: string;
  /** Unix seconds. */
  exp: number;
}

export type RotateResult = { kind: 'rotated'; token: string } | { kind: 'unknown' } | { kind: 'revoked' } | ({ kind: 'reuse' } & LastAccess);

/** KEYS family, rotated; ARGV presented hash, next hash, jti, jti exp, ttl ms. */
const ROTATE = `
local f = redis.call('HMGET', KEYS[1], 'current', 'revoked', 'jti', 'jti_exp')
if not f[1] then return {'unknown'} end
if f[1] == ARGV[1] then
  if f[2] == '1' then return {'revoked'} end
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'jti', ARGV[3], 'jti_exp', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  return {'rotated'}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'reuse', f[3] or '', f[4] or '0'}
end
return {'unknown'}`;

/** KEYS family, rotated; ARGV presented hash. Revokes the family of a token it holds (current or rotated out). */
const REVOKE = `
local f = redis.call('HMGET', KEYS[1], 'current', 'jti', 'jti_exp')
if not f[1] then return {'unknown'} end
if f[1] ~= ARGV[1] and redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return {'unknown'} end
redis.call('HSET', KEYS[1], 'revoked', '1')
return {'revoked', f[2] or '', f[3] or '0'}`;

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function newToken(family: string): string {
  return `${family}.${randomBytes(32).toString('base64url')}`;
}

export class RefreshFamilies {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** A new family for a login; resolves its first refresh token. */
  async create(user: string, access: LastAccess, now = Date.now()): Promise<string> {
    const id = randomBytes(16).toString('base64url');
    const token = newToken(id);
    const key = this.keys.refreshFamily(id);
    await this.redis
      .multi()
      .hset(key, { user, created: String(now), current: hashOf(token), revoked: '0', jti: access.jti, jti_exp: String(access.exp) })
      .pexpire(key, this.ttlSeconds * 1000)
      .exec();
    return token;
  }

  /** The family a well-formed token names, if it exists (the token itself is not checked here). */
  async familyOf(token: string): Promise<Family | undefined> {
    const id = REFRESH_TOKEN.exec(token)?.[1];
    if (!id) return undefined;
    const [user, created] = await this.redis.hmget(this.keys.refreshFamily(id), 'user', 'created');
    return user && created ? { id, user, created: Number(created) } : undefined;
  }

  /** Swaps the family's current token for a new one, or finds reuse; `access` is the access token issued with it. */
  async rotate(family: Family, presented: string, access: LastAccess): Promise<RotateResult> {
    const token = newToken(family.id);
    const [kind, jti, exp] = (await this.redis.eval(
      ROTATE,
      2,
      this.keys.refreshFamily(family.id),
      this.keys.refreshRotated(family.id),
      hashOf(presented),
      hashOf(token),
      access.jti,
      String(access.exp),
      this.ttlSeconds * 1000,
    )) as [string, string?, string?];
    if (kind === 'rotated') return { kind, token };
    if (kind === 'reuse') return { kind, jti: jti ?? '', exp: Number(exp) };
    return { kind: kind === 'revoked' ? 'revoked' : 'unknown' };
  }

  /** Revokes the family of `presented` (logout, or a login that has ended); resolves its last access token, or undefined when the token is unknown. */
  async revoke(family: Family, presented: string): Promise<LastAccess | undefined> {
    const [kind, jti, exp] = (await this.redis.eval(REVOKE, 2, this.keys.refreshFamily(family.id), this.keys.refreshRotated(family.id), hashOf(presented))) as [string, string?, string?];
    return kind === 'revoked' ? { jti: jti ?? '', exp: Number(exp) } : undefined;
  }
}
