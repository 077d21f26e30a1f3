import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for a request path: commands fail at once while disconnected (no offline
 * queue), so callers fail closed or spool instead of hanging; reconnects run in the background.
 */
export function connectFailFast(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...options,
  });
}

/** A connection for BullMQ workers, which must wait through outages (BullMQ's requirement). */
export function connectPatient(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000), ...options });
}
