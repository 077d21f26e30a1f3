import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { WINDOW_SECONDS, type LimitAlgorithm, type WindowName } from '../../common/config/schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { isReady, masters, RedisBreakerOpenError, RedisTimeoutError, RedisUnavailableError, type RedisClient } from '../../common/redis.js';
import { CircuitBreaker } from './circuit-breaker.js';
import type { BanMirror } from './ban-mirror.js';
import { ANSWER_HEAD, callResult, combine, NOT_HERE, type CallResult } from './decide-answers.js';
import { planDecision, type DecisionCall } from './decision-plan.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'auth-sidecar/limiter/decide.lua'), 'utf8');
/**
 * The same script for a batch whose calls lie in several slots of one cluster node (Redis 7
 * script flags): one EVALSHA per node instead of one per slot. Declared keys must still share a
 * slot, so it declares one (to route the call) and takes every key in ARGV (see decide.lua).
 */
const CROSS_SLOT_SCRIPT = `#!lua flags=allow-cross-slot-keys\n${replaceOnce(
  SCRIPT,
  'local K, A = KEYS, ARGV',
  'local n = tonumber(ARGV[1])\nlocal K, A = { unpack(ARGV, 2, n + 1) }, { unpack(ARGV, n + 2) }',
)}`;
/**
 * What a cluster answers when a batch's slots are not all on the node it reached (a slot moved
 * or is moving): the script did not run, so its calls can be sent again, one slot at a time.
 */
const NOT_RUN_ON_THAT_NODE = /^(MOVED|ASK|CROSSSLOT|TRYAGAIN)\b|Too many Cluster redirections/;

/** One limit a request is counted against. */
export interface LimitWindow {
  /** Shown in headers and the audit event, e.g. `tier:free:minute`. */
  name: string;
  /** Counter base key from RedisKeys.rateCounter. */
  key: string;
  window: WindowName;
  max: number;
  algorithm: LimitAlgorithm;
  /** gcra: requests that may come at once (the others ignore it). */
  burst: number;
  /** Never refuses: reports that it would have (the audit's shadow). */
  shadow: boolean;
  /** A request the decision refuses still counts in this window. */
  countRefused: boolean;
}

/** decide.lua's letter for each algorithm. */
const ALGORITHM_CODE: Record<LimitAlgorithm, string> = { fixed: 'f', sliding: 's', gcra: 'g' };
/** decide.lua's window flags. */
const COUNT_REFUSED = 1;
const SHADOW = 2;

export interface DecisionInput {
  jti: string | undefined;
  consumer: string | undefined;
  iat: number | undefined;
  clientIp: string;
  /** False when the ACL already refused: checks revocation and bans without spending quota. */
  count: boolean;
  /** What the request counts as in every window (its route's cost). */
  cost: number;
  windows: readonly LimitWindow[];
  /**
   * performance.now() after which the answer is no use: the decision is then rejected with
   * RedisTimeoutError, is not sent if it has not been, and decide.lua counts nothing for it if
   * it runs later. Undefined: waits for Redis.
   */
  giveUpAt?: number;
}

/** One window's state after a decision. */
export interface LimitReport {
  name: string;
  window: WindowName;
  max: number;
  remaining: number;
  resetSeconds: number;
}

export type StoreVerdict =
  | {
      status: 'allowed' | 'rate_limited';
      /** The window that refused, else the tightest enforced one (none when every window is shadow). */
      limit: LimitReport | undefined;
      /** Allowed, but this shadow window would have refused. */
      shadow: LimitReport | undefined;
      /** What remains of each of the decision's windows, in their order. */
      remaining: readonly number[];
    }
  | { status: 'token_revoked' | 'consumer_revoked' | 'ip_banned' | 'consumer_banned'; limit: undefined; shadow: undefined; remaining: readonly number[] };

type DecideCommand = (...args: (string | number)[]) => Promise<number[]>;

interface Queued {
  input: DecisionInput;
  resolve: (verdict: StoreVerdict) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  calls: DecisionCall[];
  /** Each call's answer in its place; the decision is made once all have come (one, on one Redis). */
  answers: CallResult[];
  pending: number;
  /** The client ip is banned (the sidecar's copy said so): decided by the calls' checks, not counted. */
  ipBanned: boolean;
}

/** One decide.lua call of a queued decision, waiting for its batch. */
interface QueuedCall {
  decision: Queued;
  call: DecisionCall;
  /** Its place among the decision's calls. */
  index: number;
  count: boolean;
}

/** How often the clock offset to Redis is measured again. */
const CLOCK_REMEASURE_MS = 10_000;
/** TIME round trips per clock offset measurement. */
const CLOCK_SAMPLES = 3;
/** How long before the local give-up decide.lua stops counting: the reply's way back. */
const REPLY_MARGIN_MS = 10;

/** Calls per EVALSHA: bounds how long one script holds Redis (a decision is a few µs). */
const MAX_BATCH = 128;

/**
 * Runs decide.lua. Decisions asked for in one tick (a CheckStream message carries many) share
 * one EVALSHA, which costs Redis and this process far less than one call each; the script
 * decides them in order, so they count exactly as separate calls would. ioredis falls back to
 * EVAL on NOSCRIPT, so a restarted Redis is handled. Rejects at once when Redis is not
 * connected; the caller fails closed (or open).
 *
 * On a Redis Cluster a decision is one call per slot its keys fall in (decision-plan.ts), and
 * the calls of a tick are batched per node (one EVALSHA over the node's slots); revoked token ids and, for a consumer, ip bans are
 * read from `mirror`, and no decision is made while the mirror is not synced.
 *
 * A decision may carry a give-up time: past it the caller gets RedisTimeoutError, a decision not
 * yet sent is not sent, and the script, should it run later (Redis frozen or slow), sees by Redis'
 * own clock that it is too late and counts nothing. The offset between this process's clock and
 * Redis' (the lowest of every master's) is measured with TIME on every (re)connect and every
 * 10 s; until it is known, only the local timeout applies.
 */
export class RedisDecider {
  private readonly decide: DecideCommand;
  private readonly decideCrossSlot: DecideCommand;
  private queued: QueuedCall[] = [];
  /** Redis' unix clock minus performance.now(), in ms, a lower bound; undefined until measured. */
  private redisClockOffset: number | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly mirror?: BanMirror,
    private readonly breaker: CircuitBreaker = new CircuitBreaker(5, 2_000),
    /** Told how long each decide.lua call took, in ms (metrics). */
    private readonly timed: (ms: number) => void = () => undefined,
  ) {
    this.decide = defineDecide(redis, 'gatewayDecide', SCRIPT);
    this.decideCrossSlot = defineDecide(redis, 'gatewayDecideCrossSlot', CROSS_SLOT_SCRIPT);
    redis.on('ready', () => void this.measureClockOffset());
    if (isReady(redis)) void this.measureClockOffset();
    // Again now and then: a clock step on either host (NTP) must not leave every decision
    // "too late" (all failing closed) until the next reconnect.
    setInterval(() => isReady(redis) && this.measureClockOffset(), CLOCK_REMEASURE_MS).unref();
  }

  /**
   * Decides, unless the breaker is open (RedisBreakerOpenError at once). Decisions that time out
   * after being sent open it; any answer closes it.
   */
  run(input: DecisionInput): Promise<StoreVerdict> {
    if (!this.breaker.admits()) return Promise.reject(new RedisBreakerOpenError());
    return this.decideNow(input).then(
      (verdict) => {
        this.breaker.succeeded();
        return verdict;
      },
      (err: Error) => {
        // Only Redis failing to answer what it was sent counts; not being connected already fails at once.
        if (err instanceof RedisTimeoutError && err.sent) this.breaker.failed();
        else this.breaker.inconclusive();
        throw err;
      },
    );
  }

  private decideNow(input: DecisionInput): Promise<StoreVerdict> {
    if (!isReady(this.redis)) return Promise.reject(new RedisUnavailableError(this.redis.status));
    if (this.mirror && !this.mirror.isSynced) return Promise.reject(new RedisUnavailableError('ban copy not synced'));
    const budget = input.giveUpAt === undefined ? undefined : input.giveUpAt - performance.now();
    if (budget !== undefined && budget <= 0) return Promise.reject(new RedisTimeoutError('before it was sent', false));
    const plan = planDecision(input, this.keys);
    if (plan.mirrored.jti && this.mirror?.has(plan.mirrored.jti)) return Promise.resolve({ status: 'token_revoked', limit: undefined, shadow: undefined, remaining: [] });
    const ipBanned = plan.mirrored.ip !== undefined && this.mirror?.has(plan.mirrored.ip) === true;
    return new Promise((resolve, reject) => {
      const decision: Queued = { input, resolve, reject, timer: undefined, settled: false, calls: plan.calls, answers: [], pending: plan.calls.length, ipBanned };
      if (budget !== undefined) decision.timer = setTimeout(() => settle(decision, new RedisTimeoutError(`after ${Math.round(budget)} ms`)), budget);
      // A banned ip's request is checked (a consumer revocation outranks the ban) but not counted.
      const count = input.count && !ipBanned;
      for (let i = 0; i < plan.calls.length; i++) {
        if (this.queued.push({ decision, call: plan.calls[i]!, index: i, count }) === 1) queueMicrotask(() => this.flush());
      }
    });
  }

  private flush(): void {
    // Decisions whose caller gave up meanwhile are not sent.
    const calls = this.queued.filter((q) => !q.decision.settled);
    this.queued = [];
    if (!(this.redis instanceof Cluster)) return this.send(calls);
    // On a cluster, one batch per node: the slot map says which node serves each call's slot.
    const slots = this.redis.slots;
    for (const group of groupBy(calls, (q) => slots[q.call.slot]?.[0] ?? `slot ${q.call.slot}`)) this.send(group);
  }

  /** Sends calls in batches of MAX_BATCH; on a cluster, a batch over several slots runs as one if its node still serves them all. */
  private send(calls: QueuedCall[]): void {
    for (let i = 0; i < calls.length; i += MAX_BATCH) {
      const batch = calls.slice(i, i + MAX_BATCH);
      const crossSlot = batch.some((q) => q.call.slot !== batch[0]!.call.slot);
      this.decideBatch(batch, crossSlot).catch((err: Error) => {
        if (crossSlot && NOT_RUN_ON_THAT_NODE.test(err.message)) return groupBy(batch, (q) => q.call.slot).forEach((slot) => this.send(slot));
        for (const q of batch) settle(q.decision, err);
      });
    }
  }

  /**
   * A lower bound of Redis' clock minus ours, from TIME: Redis read its clock before the reply
   * came back, so `redis time - time of arrival` can only underestimate the offset; the best of a
   * few samples per master is kept, and the lowest of the masters'. Underestimating makes
   * decide.lua give up early, never late.
   */
  private async measureClockOffset(): Promise<void> {
    try {
      const nodes = await masters(this.redis);
      const best = nodes.map(() => -Infinity);
      await Promise.all(
        nodes.map(async (node, i) => {
          for (let sample = 0; sample < CLOCK_SAMPLES; sample++) {
            const [seconds, micros] = await node.time();
            best[i] = Math.max(best[i]!, Number(seconds) * 1000 + Number(micros) / 1000 - performance.now());
            // Usable from the first sample of every master on; a new measurement replaces the old one (the clocks may have moved).
            if (best.every(Number.isFinite)) this.redisClockOffset = Math.min(...best);
          }
        }),
      );
    } catch {
      // measured again on the next connect or interval
    }
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

  private async decideBatch(batch: QueuedCall[], crossSlot: boolean): Promise<void> {
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const { decision, call, count } of batch) {
      for (const key of call.checkKeys) keys.push(key);
      args.push(call.checks, call.windows.length, decision.input.iat ?? 0, count ? 1 : 0, this.redisGiveUp(decision.input), decision.input.cost);
      for (const w of call.windows) {
        keys.push(w.key);
        args.push(WINDOW_SECONDS[w.window], w.max, ALGORITHM_CODE[w.algorithm], w.burst, (w.countRefused ? COUNT_REFUSED : 0) + (w.shadow ? SHADOW : 0));
      }
    }
    const sentMs = performance.now();
    const results = crossSlot ? await this.decideCrossSlot(1, keys[0]!, keys.length, ...keys, ...args) : await this.decide(keys.length, ...keys, ...args);
    this.timed(performance.now() - sentMs);
    let at = 0;
    for (const q of batch) {
      const answer = callResult(results, at, q.call.windows.length);
      at += ANSWER_HEAD + q.call.windows.length;
      // Its slot moved off that node: sent again on its own, where the cluster routes it.
      if (answer.code === NOT_HERE) this.send([q]);
      else answered(q, answer);
    }
  }
}

/** Takes one call's answer; with the last one, decides. */
function answered(q: QueuedCall, answer: CallResult): void {
  const decision = q.decision;
  decision.answers[q.index] = answer;
  if (--decision.pending > 0) return;
  const verdict = combine(decision.calls, decision.answers, decision.input.windows);
  if (verdict instanceof Error) return settle(decision, verdict);
  const outranksBan = verdict.status === 'token_revoked' || verdict.status === 'consumer_revoked';
  settle(decision, undefined, decision.ipBanned && !outranksBan ? { status: 'ip_banned', limit: undefined, shadow: undefined, remaining: [] } : verdict);
}

function replaceOnce(text: string, search: string, replacement: string): string {
  if (text.split(search).length !== 2) throw new Error(`decide.lua must hold \`${search}\` exactly once`);
  return text.replace(search, replacement);
}

function defineDecide(redis: RedisClient, name: string, lua: string): DecideCommand {
  redis.defineCommand(name, { lua });
  const command = (redis as unknown as Record<string, DecideCommand>)[name];
  if (!command) throw new Error(`defineCommand did not install ${name}`);
  return command.bind(redis);
}

/** `items` in groups of equal `keyOf`, each in the items' order. */
function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | number): T[][] {
  const groups = new Map<string | number, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

/** Answers a decision once: whichever of its timer and Redis comes first. */
function settle(q: Queued, err: Error | undefined, verdict?: StoreVerdict): void {
  if (q.settled) return;
  q.settled = true;
  if (q.timer) clearTimeout(q.timer);
  if (err) q.reject(err);
  else q.resolve(verdict as StoreVerdict);
}
