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

type DecideCommand = (...args: (string | number)[]) => Promise<number[]>;

/**
 * Runs decide.lua: one EVALSHA per request (ioredis falls back to EVAL on NOSCRIPT, so a
 * restarted Redis is handled). Throws at once when Redis is not connected; the caller fails closed.
 */
export class RedisDecider {
  private readonly decide: DecideCommand;

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys) {
    redis.defineCommand('gatewayDecide', { lua: SCRIPT });
    const command = (redis as unknown as Record<string, DecideCommand>)['gatewayDecide'];
    if (!command) throw new Error('defineCommand did not install gatewayDecide');
    this.decide = command.bind(redis);
  }

  async run(input: DecisionInput): Promise<StoreVerdict> {
    if (!isReady(this.redis)) throw new RedisUnavailableError(this.redis.status);
    const { keys } = this;
    const args: (string | number)[] = [
      4 + input.windows.length,
      input.jti ? keys.revokedJti(input.jti) : '',
      input.consumer ? keys.revokedConsumer(input.consumer) : '',
      keys.banIp(input.clientIp),
      input.consumer ? keys.banConsumer(input.consumer) : '',
      ...input.windows.map((w) => w.key),
      input.iat ?? 0,
      input.count ? 1 : 0,
      ...input.windows.flatMap((w) => [WINDOW_SECONDS[w.window], w.max]),
    ];
    const [code = -1, index = 0, max = 0, remaining = 0, reset = 0] = await this.decide(...args);
    const status = STATUSES[code];
    if (!status) throw new Error(`decide.lua returned unknown status ${code}`);
    if (status !== 'allowed' && status !== 'rate_limited') return { status, limit: undefined };
    const window = input.windows[index - 1];
    return {
      status,
      limit: window && { name: window.name, max, remaining: Math.max(0, remaining), resetSeconds: reset },
    };
  }
}
