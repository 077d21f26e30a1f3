import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { WINDOW_SECONDS, type WindowName } from '../../common/config/schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { isReady, RedisUnavailableError } from '../../common/redis.js';

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
}

export type StoreVerdict =
  | { status: 'allowed' | 'rate_limited'; limit: { name: string; max: number; remaining: number; resetSeconds: number } | undefined }
  | { status: 'token_revoked' | 'consumer_revoked' | 'ip_banned' | 'consumer_banned'; limit: undefined };

const STATUSES = ['allowed', 'token_revoked', 'consumer_revoked', 'ip_banned', 'consumer_banned', 'rate_limited'] as const;
/** decide.lua's status for a decision whose keys hold something unexpected (e.g. WRONGTYPE). */
const UNDECIDABLE = 6;

type DecideCommand = (...args: (string | number)[]) => Promise<number[]>;

interface Queued {
  input: DecisionInput;
  resolve: (verdict: StoreVerdict) => void;
  reject: (err: Error) => void;
}

/** Decisions per EVALSHA: bounds how long one script holds Redis (a decision is a few µs). */
const MAX_BATCH = 128;

/**
 * Runs decide.lua. Decisions asked for in one tick (a CheckStream message carries many) share
 * one EVALSHA, which costs Redis and this process far less than one call each; the script
 * decides them in order, so they count exactly as separate calls would. ioredis falls back to
 * EVAL on NOSCRIPT, so a restarted Redis is handled. Rejects at once when Redis is not
 * connected; the caller fails closed.
 */
export class RedisDecider {
  private readonly decide: DecideCommand;
  private queued: Queued[] = [];

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys) {
    redis.defineCommand('gatewayDecide', { lua: SCRIPT });
    const command = (redis as unknown as Record<string, DecideCommand>)['gatewayDecide'];
    if (!command) throw new Error('defineCommand did not install gatewayDecide');
    this.decide = command.bind(redis);
  }

  run(input: DecisionInput): Promise<StoreVerdict> {
    if (!isReady(this.redis)) return Promise.reject(new RedisUnavailableError(this.redis.status));
    return new Promise((resolve, reject) => {
      if (this.queued.push({ input, resolve, reject }) === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (let i = 0; i < queued.length; i += MAX_BATCH) {
      const batch = queued.slice(i, i + MAX_BATCH);
      this.decideBatch(batch).catch((err: Error) => {
        for (const q of batch) q.reject(err);
      });
    }
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
      args.push(input.windows.length, input.iat ?? 0, input.count ? 1 : 0);
      for (const w of input.windows) {
        keys.push(w.key);
        args.push(WINDOW_SECONDS[w.window], w.max);
      }
    }
    const results = await this.decide(keys.length, ...keys, ...args);
    batch.forEach((q, i) => {
      const [code = -1, index = 0, max = 0, remaining = 0, reset = 0] = results.slice(5 * i, 5 * i + 5);
      if (code === UNDECIDABLE) return q.reject(new Error('decide.lua could not decide: a key of this request holds an unexpected value'));
      const status = STATUSES[code];
      if (!status) return q.reject(new Error(`decide.lua returned unknown status ${code}`));
      if (status !== 'allowed' && status !== 'rate_limited') return q.resolve({ status, limit: undefined });
      const window = q.input.windows[index - 1];
      q.resolve({ status, limit: window && { name: window.name, max, remaining: Math.max(0, remaining), resetSeconds: reset } });
    });
  }
}
