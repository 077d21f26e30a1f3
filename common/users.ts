/**
 * The users of the sidecar's own issuer, kept in Redis (one hash per user, keys from RedisKeys):
 * written by `npm run admin -- users ...`, read by the sidecar at login and refresh.
 * A password is only ever stored as a bcrypt hash; `sessions_after` (unix ms) ends every login
 * made before it (set on a password change and on disable), so their refresh tokens stop working.
 */
import { scanKeys, type RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

/** A username: what a token's `sub` and the X-Consumer-Username header may carry. */
export const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** bcrypt reads at most 72 bytes of a password and ignores the rest: longer ones are refused, never cut. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_CHARS = 8;

export interface User {
  username: string;
  /** bcrypt hash ($2b$<cost>$...). */
  hash: string;
  groups: string[];
  tier: string | undefined;
  disabled: boolean;
  /** Unix ms. */
  createdAt: number;
  /** Unix ms: logins made before it are over (their refresh families are refused). */
  sessionsAfter: number;
}

/** Why a password cannot be used, or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return `is longer than ${MAX_PASSWORD_BYTES} bytes (bcrypt's limit)`;
  if ([...password].length < MIN_PASSWORD_CHARS) return `is shorter than ${MIN_PASSWORD_CHARS} characters`;
  return undefined;
}

/** HSET the fields only when the user does not exist yet. */
const ADD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

/** HSET the fields only when the user exists. */
const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

export class Users {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async get(username: string): Promise<User | undefined> {
    if (!USERNAME.test(username)) return undefined;
    const fields = await this.redis.hgetall(this.keys.user(username));
    return userOf(username, fields);
  }

  /** Resolves false when the username is taken. */
  async add(user: Omit<User, 'createdAt' | 'sessionsAfter' | 'disabled'>, now = Date.now()): Promise<boolean> {
    const fields = { hash: user.hash, groups: user.groups.join(','), tier: user.tier ?? '', disabled: '0', created_at: String(now), sessions_after: '0' };
    return (await this.redis.eval(ADD, 1, this.keys.user(user.username), ...Object.entries(fields).flat())) === 1;
  }

  /** A new password ends every login made so far. Resolves false when there is no such user. */
  setPassword(username: string, hash: string, now = Date.now()): Promise<boolean> {
    return this.update(username, { hash, sessions_after: String(now) });
  }

  /** Disabling ends every login made so far; enabling starts none. Resolves false when there is no such user. */
  setDisabled(username: string, disabled: boolean, now = Date.now()): Promise<boolean> {
    return this.update(username, disabled ? { disabled: '1', sessions_after: String(now) } : { disabled: '0' });
  }

  /** Every user, sorted by name. */
  async list(): Promise<User[]> {
    const pattern = this.keys.userPattern();
    const names = await scanKeys(this.redis, pattern.match);
    const users = await Promise.all(names.map(async (key) => userOf(pattern.subjectOf(key), await this.redis.hgetall(key))));
    return users.filter((u): u is User => u !== undefined).sort((a, b) => a.username.localeCompare(b.username));
  }

  private async update(username: string, fields: Record<string, string>): Promise<boolean> {
    return (await this.redis.eval(UPDATE, 1, this.keys.user(username), ...Object.entries(fields).flat())) === 1;
  }
}

function userOf(username: string, fields: Record<string, string>): User | undefined {
  if (!fields['hash']) return undefined;
  return {
    username,
    hash: fields['hash'],
    groups: fields['groups'] ? fields['groups'].split(',') : [],
    tier: fields['tier'] || undefined,
    disabled: fields['disabled'] === '1',
    createdAt: Number(fields['created_at'] ?? 0),
    sessionsAfter: Number(fields['sessions_after'] ?? 0),
  };
}
