import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { WINDOW_SECONDS, type WindowName } from '../../common/config/schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { isReady, RedisTimeoutError, RedisUnavailableError } from '../../common/redis.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'auth-sidecar/limiter/decide.lua'), 'utf8');

/** One limit a request is counted against. */
export interface LimitWindow {
  /** Shown in headers and the audit event, e.g. `tier:free:minute`. */
  name: string;
  /** Counter base key from RedisKeys.rateCounter. */
  key: string;
  window: WindowName;
  max: number;
}

export interface DecisionInput {
  jti: string | undefined;
  consumer: string | undefined;
  iat: number | undefined;
  clientIp: string;
  /** False when the ACL already refused: checks revocation and bans without spending quota. */
  count: boolean;
  windows: readonly LimitWindow[];
  /**
   * performance.now() after which the answer is no use: the decision is then rejected with
   * RedisTimeoutError, is not sent if it has not been, and decide.lua counts nothing for it if
   * it runs later. Undefined: waits for Redis.
   */
  giveUpAt?: number;
}

export type StoreVerdict =
  | { status: 'allowed' | 'rate_limited'; limit: { name: string; max: number; remaining: number; resetSeconds: number } | undefined }
  | { status: 'token_revoked' | 'consumer_revoked' | 'ip_banned' | 'consumer_banned'; limit: undefined };

const STATUSES = ['allowed', 'token_revoked', 'consumer_revoked', 'ip_banned', 'consumer_banned', 'rate_limited'] as const;
/** decide.lua's status for a decision whose keys hold something unexpected (e.g. WRONGTYPE). */
const UNDECIDABLE = 6;
/** decide.lua's status for a decision that ran after its give-up time. */
const TOO_LATE = 7;

type DecideCommand = (...args: (string | number)[]) => Promise<number[]>;

interface Queued {
  input: DecisionInput;
  resolve: (verdict: StoreVerdict) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
}

/** How often the clock offset to Redis is measured again. */
const CLOCK_REMEASURE_MS = 10_000;
/** TIME round trips per clock offset measurement. */
const CLOCK_SAMPLES = 3;
/** How long before the local give-up decide.lua stops counting: the reply's way back. */
const REPLY_MARGIN_MS = 10;

/** Decisions per EVALSHA: bounds how long one script holds Redis (a decision is a few µs). */
const MAX_BATCH = 128;

/**
 * Runs decide.lua. Decisions asked for in one tick (a CheckStream message carries many) share
 * one EVALSHA, which costs Redis and this process far less than one call each; the script
 * decides them in order, so they count exactly as separate calls would. ioredis falls back to
 * EVAL on NOSCRIPT, so a restarted Redis is handled. Rejects at once when Redis is not
 * connected; the caller fails closed (or open).
 *
 * A decision may carry a give-up time: past it the caller gets RedisTimeoutError, a decision not
 * yet sent is not sent, and the script, should it run later (Redis frozen or slow), sees by Redis'
 * own clock that it is too late and counts nothing. The offset between this process's clock and
 * Redis' is measured with TIME on every (re)connect and every 10 s; until it is known, only the
 * local timeout applies.
 */
export class RedisDecider {
  private readonly decide: DecideCommand;
  private queued: Queued[] = [];
  /** Redis' unix clock minus performance.now(), in ms, a lower bound; undefined until measured. */
  private redisClockOffset: number | undefined;

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys) {
    redis.defineCommand('gatewayDecide', { lua: SCRIPT });
    const command = (redis as unknown as Record<string, DecideCommand>)['gatewayDecide'];
    if (!command) throw new Error('defineCommand did not install gatewayDecide');
    this.decide = command.bind(redis);
    redis.on('ready', () => this.measureClockOffset());
    if (isReady(redis)) this.measureClockOffset();
    // Again now and then: a clock step on either host (NTP) must not leave every decision
    // "too late" (all failing closed) until the next reconnect.
    setInterval(() => isReady(redis) && this.measureClockOffset(), CLOCK_REMEASURE_MS).unref();
  }

  run(input: DecisionInput): Promise<StoreVerdict> {
    if (!isReady(this.redis)) return Promise.reject(new RedisUnavailableError(this.redis.status));
    const budget = input.giveUpAt === undefined ? undefined : input.giveUpAt - performance.now();
    if (budget !== undefined && budget <= 0) return Promise.reject(new RedisTimeoutError('before it was sent'));
    return new Promise((resolve, reject) => {
      const queued: Queued = { input, resolve, reject, timer: undefined, settled: false };
      if (budget !== undefined) queued.timer = setTimeout(() => settle(queued, new RedisTimeoutError(`after ${Math.round(budget)} ms`)), budget);
      if (this.queued.push(queued) === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    // Decisions whose caller gave up meanwhile are not sent.
    const queued = this.queued.filter((q) => !q.settled);
    this.queued = [];
    for (let i = 0; i < queued.length; i += MAX_BATCH) {
      const batch = queued.slice(i, i + MAX_BATCH);
      this.decideBatch(batch).catch((err: Error) => {
        for (const q of batch) settle(q, err);
      });
    }
  }

  /**
   * A lower bound of Redis' clock minus ours, from TIME: Redis read its clock before the reply
   * came back, so `redis time - time of arrival` can only underestimate the offset; the best of a
   * few samples is kept. Underestimating makes decide.lua give up early, never late.
   */
  private measureClockOffset(): void {
    let best: number | undefined;
    const sample = (left: number): void => {
      this.redis.time().then(
        ([seconds, micros]) => {
          const offset = Number(seconds) * 1000 + Number(micros) / 1000 - performance.now();
          // A new measurement replaces the old one (the clocks may have moved), best of its samples.
          best = best === undefined ? offset : Math.max(best, offset);
          this.redisClockOffset = best;
          if (left > 1) sample(left - 1);
        },
        () => undefined, // measured again on the next connect
      );
    };
    sample(CLOCK_SAMPLES);
  }

  /**
   * The give-up time by Redis' clock in unix ms for decide.lua, early enough for a counted
   * decision's answer to be back before the local give-up; 0 when there is none or the offset is
   * not known yet.
   */
  private redisGiveUp(input: DecisionInput): number {
    if (input.giveUpAt === undefined || this.redisClockOffset === undefined) return 0;
    return Math.floor(input.giveUpAt + this.redisClockOffset - REPLY_MARGIN_MS);
  }

  private async decideBatch(batch: Queued[]): Promise<void> {
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const { input } of batch) {
      keys.push(
        input.jti ? this.keys.revokedJti(input.jti) : '',
        input.consumer ? this.keys.revokedConsumer(input.consumer) : '',
        this.keys.banIp(input.clientIp),
        input.consumer ? this.keys.banConsumer(input.consumer) : '',
      );
      args.push(input.windows.length, input.iat ?? 0, input.count ? 1 : 0, this.redisGiveUp(input));
      for (const w of input.windows) {
        keys.push(w.key);
        args.push(WINDOW_SECONDS[w.window], w.max);
      }
    }
    const results = await this.decide(keys.length, ...keys, ...args);
    batch.forEach((q, i) => {
      const [code = -1, index = 0, max = 0, remaining = 0, reset = 0] = results.slice(5 * i, 5 * i + 5);
      if (code === UNDECIDABLE) return settle(q, new Error('decide.lua could not decide: a key of this request holds an unexpected value'));
      if (code === TOO_LATE) return settle(q, new RedisTimeoutError('ran after its give-up time'));
      const status = STATUSES[code];
      if (!status) return settle(q, new Error(`decide.lua returned unknown status ${code}`));
      if (status !== 'allowed' && status !== 'rate_limited') return settle(q, undefined, { status, limit: undefined });
      const window = q.input.windows[index - 1];
      settle(q, undefined, { status, limit: window && { name: window.name, max, remaining: Math.max(0, remaining), resetSeconds: reset } });
    });
  }
}

/** Answers a decision once: whichever of its timer and Redis comes first. */
function settle(q: Queued, err: Error | undefined, verdict?: StoreVerdict): void {
  if (q.settled) return;
  q.settled = true;
  if (q.timer) clearTimeout(q.timer);
  if (err) q.reject(err);
  else q.resolve(verdict as StoreVerdict);
}
