/**
 * Consumers' own limits as this sidecar holds them: the config's `limit_overrides`, under those
 * set with `admin limits set` (common/limit-overrides.ts), which win. The set ones are re-read
 * when their version changes, polled every READ_MS, so a change reaches every sidecar within a
 * second without a Redis call per decision. A failed read keeps the last ones read.
 */
import type { LimitOverride } from '../../common/config/schema.js';
import { limitOverridesVersion, readLimitOverrides } from '../../common/limit-overrides.js';
import type { Logger } from '../../common/logger.js';
import { Poll } from '../../common/poll.js';
import { isReady, type RedisClient } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';

const READ_MS = 500;

export class LimitOverrides {
  private set = new Map<string, LimitOverride>();
  private version: string | undefined;
  private readonly poll = new Poll(READ_MS, () => this.read());
  private failing = false;

  constructor(
    private configured: Readonly<Record<string, LimitOverride>>,
    private readonly redis?: RedisClient,
    private readonly keys?: RedisKeys,
    private readonly logger?: Logger,
  ) {}

  start(): Promise<void> {
    return this.poll.start();
  }

  stop(): void {
    this.poll.stop();
  }

  /** The config's overrides (a reloaded config's). */
  configure(configured: Readonly<Record<string, LimitOverride>>): void {
    this.configured = configured;
  }

  of(consumer: string): LimitOverride | undefined {
    return this.set.get(consumer) ?? (Object.hasOwn(this.configured, consumer) ? this.configured[consumer] : undefined);
  }

  private async read(): Promise<void> {
    const { redis, keys } = this;
    if (!redis || !keys || !isReady(redis)) return;
    try {
      const version = await limitOverridesVersion(redis, keys);
      if (version === this.version) return;
      const { overrides, invalid } = await readLimitOverrides(redis, keys);
      if (invalid.length > 0) this.logger?.warn('limit overrides that are not valid are ignored', { code: 'limit_override_invalid', consumers: invalid.slice(0, 10) });
      this.set = overrides;
      this.version = version;
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger?.warn('limit overrides not read: the last ones read stay in force', { code: 'limit_overrides_unread', error: (err as Error).message });
      this.failing = true;
    }
  }
}
