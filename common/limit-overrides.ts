/**
 * Consumers' own rate limits set with `admin limits set` (the config's `limit_overrides` are the
 * other source; these win). A hash of consumer -> JSON of a LimitOverride, and a version bumped
 * with every change in the same transaction, which sidecars poll (auth-sidecar/limiter/limit-overrides.ts).
 */
import { limitOverrideSchema, type LimitOverride } from './config/schema.js';
import type { RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

export async function setLimitOverride(redis: RedisClient, keys: RedisKeys, consumer: string, override: LimitOverride): Promise<void> {
  await redis.multi().hset(keys.limitOverrides, consumer, JSON.stringify(override)).incr(keys.limitOverridesVersion).exec();
}

/** False when the consumer had no override set here. */
export async function clearLimitOverride(redis: RedisClient, keys: RedisKeys, consumer: string): Promise<boolean> {
  const replies = await redis.multi().hdel(keys.limitOverrides, consumer).incr(keys.limitOverridesVersion).exec();
  const [err, removed] = replies?.[0] ?? [new Error('transaction aborted'), 0];
  if (err) throw err;
  return removed === 1;
}

export async function limitOverridesVersion(redis: RedisClient, keys: RedisKeys): Promise<string> {
  return (await redis.get(keys.limitOverridesVersion)) ?? '0';
}

/** Every override set, and the entries that are not a valid override (written by hand?), by consumer. */
export async function readLimitOverrides(redis: RedisClient, keys: RedisKeys): Promise<{ overrides: Map<string, LimitOverride>; invalid: string[] }> {
  const fields = await redis.hgetall(keys.limitOverrides);
  const overrides = new Map<string, LimitOverride>();
  const invalid: string[] = [];
  for (const [consumer, text] of Object.entries(fields)) {
    const parsed = limitOverrideSchema.safeParse(parseJson(text));
    if (parsed.success) overrides.set(consumer, parsed.data);
    else invalid.push(consumer);
  }
  return { overrides, invalid };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
