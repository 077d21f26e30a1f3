import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for a request path: auto-pipelined (one write per tick for all in-flight
 * decisions), reconnecting in the background. Callers check `isReady` first and fail closed
 * (or spool) at once instead of waiting. `enableOfflineQueue: false` is NOT used: combined with
 * auto-pipelining, ioredis 5 throws it from a setImmediate and kills the process.
 */
export function connectFailFast(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...options,
  });
}

/** True when commands sent now go straight to a connected server. */
export function isReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

/** The error a request path raises when Redis is not connected. */
export class RedisUnavailableError extends Error {
  readonly code = 'redis_unavailable';
  constructor(status: string) {
    super(`redis is not connected (${status})`);
    this.name = 'RedisUnavailableError';
  }
}

/** A connection for BullMQ workers, which must wait through outages (BullMQ's requirement). */
export function connectPatient(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000), ...options });
}
