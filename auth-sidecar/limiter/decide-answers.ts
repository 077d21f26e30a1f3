/** decide.lua's answers, read: the status codes, and one verdict from a decision's calls. */
import { RedisTimeoutError } from '../../common/redis.js';
import type { DecisionCall } from './decision-plan.js';
import type { LimitWindow, StoreVerdict } from './redis-decider.js';

export const STATUSES = ['allowed', 'token_revoked', 'consumer_revoked', 'ip_banned', 'consumer_banned', 'rate_limited'] as const;
/** decide.lua's status for a decision whose keys hold something unexpected (e.g. WRONGTYPE). */
const UNDECIDABLE = 6;
/** decide.lua's status for a decision that ran after its give-up time. */
const TOO_LATE = 7;
/** decide.lua's status for a decision of a cross-slot batch whose slot that node no longer serves. */
export const NOT_HERE = 8;

const ALLOWED = 0;
const RATE_LIMITED = STATUSES.indexOf('rate_limited');

/** decide.lua's answer for one call: status, window (1-based in the call's windows), max, remaining, reset. */
export type CallResult = [code: number, window: number, max: number, remaining: number, reset: number];

/**
 * One verdict from a decision's calls: the first refusal in order of precedence (decide.lua's
 * status order), a rate limit naming the window that frees last; else allowed, naming the
 * tightest window. An error when a call could not decide.
 */
export function combine(calls: DecisionCall[], answers: CallResult[], windows: readonly LimitWindow[]): StoreVerdict | Error {
  let refused = -1;
  let tightest = -1;
  for (let i = 0; i < answers.length; i++) {
    const [code, window, , remaining, reset] = answers[i]!;
    if (code === UNDECIDABLE) return new Error('decide.lua could not decide: a key of this request holds an unexpected value');
    if (code === TOO_LATE) return new RedisTimeoutError('ran after its give-up time');
    if (!STATUSES[code]) return new Error(`decide.lua returned unknown status ${code}`);
    if (code !== ALLOWED) {
      const before = answers[refused];
      if (!before || code < before[0] || (code === RATE_LIMITED && code === before[0] && reset > before[4])) refused = i;
    } else if (window > 0 && (tightest < 0 || remaining < answers[tightest]![3])) {
      tightest = i;
    }
  }
  const named = refused >= 0 ? refused : tightest;
  const status = STATUSES[refused >= 0 ? answers[refused]![0] : ALLOWED]!;
  if ((status !== 'allowed' && status !== 'rate_limited') || named < 0) return { status, limit: undefined };
  const [, window, max, remaining, reset] = answers[named]!;
  const index = calls[named]!.windowIndex;
  const limit = windows[index ? index[window - 1]! : window - 1];
  return { status, limit: limit && { name: limit.name, max, remaining: Math.max(0, remaining), resetSeconds: reset } };
}
