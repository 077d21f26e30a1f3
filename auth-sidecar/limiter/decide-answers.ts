/** decide.lua's answers, read: the status codes, and one verdict from a decision's calls. */
import { RedisTimeoutError } from '../../common/redis.js';
import type { DecisionCall } from './decision-plan.js';
import type { LimitReport, LimitWindow, StoreVerdict } from './redis-decider.js';

export const STATUSES = ['allowed', 'token_revoked', 'consumer_revoked', 'ip_banned', 'consumer_banned', 'rate_limited'] as const;
/** decide.lua's status for a decision whose keys hold something unexpected (e.g. WRONGTYPE). */
const UNDECIDABLE = 6;
/** decide.lua's status for a decision that ran after its give-up time. */
const TOO_LATE = 7;
/** decide.lua's status for a decision of a cross-slot batch whose slot that node no longer serves. */
export const NOT_HERE = 8;

const ALLOWED = 0;
const RATE_LIMITED = STATUSES.indexOf('rate_limited');

/** Numbers decide.lua answers per call before one per window. */
export const ANSWER_HEAD = 5;

/** decide.lua's answer for one call (see its header), window numbers 1-based in the call's windows. */
export interface CallResult {
  code: number;
  /** The refusing window, else the tightest enforced one; 0 none. */
  window: number;
  reset: number;
  shadowWindow: number;
  shadowReset: number;
  /** Per window of the call, in its order. */
  remaining: number[];
}

export function callResult(numbers: readonly number[], at: number, windows: number): CallResult {
  return {
    code: numbers[at] ?? -1,
    window: numbers[at + 1] ?? 0,
    reset: numbers[at + 2] ?? 0,
    shadowWindow: numbers[at + 3] ?? 0,
    shadowReset: numbers[at + 4] ?? 0,
    remaining: numbers.slice(at + ANSWER_HEAD, at + ANSWER_HEAD + windows),
  };
}

/**
 * One verdict from a decision's calls: the first refusal in order of precedence (decide.lua's
 * status order), a rate limit naming the window that frees last; else allowed, naming the
 * tightest window; with the shadow window that would have refused, and every window's remaining.
 * An error when a call could not decide.
 */
export function combine(calls: DecisionCall[], answers: CallResult[], windows: readonly LimitWindow[]): StoreVerdict | Error {
  let refused = -1;
  let tightest = -1;
  let shadowed = -1;
  const remaining: number[] = windows.map(() => 0);
  for (let i = 0; i < answers.length; i++) {
    const answer = answers[i]!;
    const { code } = answer;
    if (code === UNDECIDABLE) return new Error('decide.lua could not decide: a key of this request holds an unexpected value');
    if (code === TOO_LATE) return new RedisTimeoutError('ran after its give-up time');
    if (!STATUSES[code]) return new Error(`decide.lua returned unknown status ${code}`);
    const before = answers[refused];
    if (code !== ALLOWED) {
      if (!before || code < before.code || (code === RATE_LIMITED && code === before.code && answer.reset > before.reset)) refused = i;
    } else if (answer.window > 0 && (tightest < 0 || remainingOf(answer) < remainingOf(answers[tightest]!))) {
      tightest = i;
    }
    if (answer.shadowWindow > 0 && (shadowed < 0 || answer.shadowReset > answers[shadowed]!.shadowReset)) shadowed = i;
    answer.remaining.forEach((left, w) => (remaining[indexIn(calls[i]!, w + 1)] = Math.max(0, left)));
  }
  const status = STATUSES[refused >= 0 ? answers[refused]!.code : ALLOWED]!;
  if (status !== 'allowed' && status !== 'rate_limited') return { status, limit: undefined, shadow: undefined, remaining: [] };
  const named = refused >= 0 ? refused : tightest;
  const report = (call: number, window: number, reset: number): LimitReport | undefined => {
    const index = indexIn(calls[call]!, window);
    const limit = windows[index];
    return limit && { name: limit.name, window: limit.window, max: limit.max, remaining: remaining[index]!, resetSeconds: reset };
  };
  return {
    status,
    limit: named < 0 ? undefined : report(named, answers[named]!.window, answers[named]!.reset),
    shadow: status === 'allowed' && shadowed >= 0 ? report(shadowed, answers[shadowed]!.shadowWindow, answers[shadowed]!.shadowReset) : undefined,
    remaining,
  };
}

function remainingOf(answer: CallResult): number {
  return answer.remaining[answer.window - 1] ?? 0;
}

/** Where a call's window (1-based) is among the decision's windows. */
function indexIn(call: DecisionCall, window: number): number {
  return call.windowIndex ? call.windowIndex[window - 1]! : window - 1;
}
