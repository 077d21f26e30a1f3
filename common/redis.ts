import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for a request path, reconnecting in the background. Callers check `isReady`
 * first and fail closed (or spool) at once instead of waiting. Not auto-pipelined: the sidecar's
 * decider already sends each tick's decisions as one EVALSHA, and ioredis's auto-pipelining only
 * adds a setImmediate and a Pipeline per call (sidecar alone at 400 decisions/s, in-sidecar p99
 * 0.96-1.10 -> 0.63-0.73 ms).
 */
export function connectFailFast(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
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

/** The error a request path raises when Redis did not answer in time for the caller. */
export class RedisTimeoutError extends Error {
  readonly code = 'redis_timeout';
  constructor(when: string) {
    super(`redis did not decide in time (${when})`);
    this.name = 'RedisTimeoutError';
  }
}

/**
 * Options for a connection whose commands are only worth running while the caller waits (the
 * sidecar's decisions): nothing is queued while disconnected, and a command sent before a
 * disconnect is failed rather than sent again after the reconnect, when its caller has long
 * answered without it.
 */
export const NO_LATE_COMMANDS: RedisOptions = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false };

/** A connection for BullMQ workers, which must wait through outages (BullMQ's requirement). */
export function connectPatient(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000), ...options });
}
