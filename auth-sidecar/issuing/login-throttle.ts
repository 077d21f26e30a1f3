/**
 * Failed logins, counted per username (known or not, so the count tells nothing) and per client
 * ip, each in a window that starts at its first failure (token_issuing.login_throttle). Past
 * either limit a login is refused before its password is checked: 429 login_throttled, with
 * Retry-After for the window's rest.
 * Every attempt is counted before its password is checked and taken back when it succeeds, so
 * attempts sent in parallel cannot all pass the check before the first failure is counted.
 * A success clears its username's count.
 */
import type { TokenIssuingConfig } from '../../common/config/schema.js';
import type { RedisClient } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';

/** KEYS[1] a counter, ARGV[1] the window in ms, started by the first attempt. Returns { count, ms left }. */
const COUNT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { n, redis.call('PTTL', KEYS[1]) }`;
/** KEYS[1] a counter: one attempt taken back (never below 0, never making a key without a ttl). */
const UNCOUNT = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 1`;

export class LoginThrottle {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly limits: TokenIssuingConfig['login_throttle'],
  ) {}

  /** Counts an attempt; resolves the seconds to wait when it is over a limit (refuse it), else 0. */
  async attempt(username: string, ip: string): Promise<number> {
    const [user, address] = (await Promise.all([
      this.redis.eval(COUNT, 1, this.keys.loginFailures('user', username), this.limits.per_username.window * 1000),
      this.redis.eval(COUNT, 1, this.keys.loginFailures('ip', ip), this.limits.per_ip.window * 1000),
    ])) as [[number, number], [number, number]];
    const waits = [user[0] > this.limits.per_username.failures ? user[1] : 0, address[0] > this.limits.per_ip.failures ? address[1] : 0];
    return Math.ceil(Math.max(0, ...waits) / 1000);
  }

  /** The attempt succeeded: the username starts afresh, and it no longer counts against the ip. */
  async succeeded(username: string, ip: string): Promise<void> {
    await Promise.all([this.redis.del(this.keys.loginFailures('user', username)), this.redis.eval(UNCOUNT, 1, this.keys.loginFailures('ip', ip))]);
  }
}
