import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-target.js';

/** A connection to one Redis (directly or through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * A connection to the target (a URL, the master the sentinels name, or a cluster) with
 * `options`. For a cluster, `options` apply to each node's connection, and the offline queue
 * and reconnect backoff to the cluster as a whole.
 */
export function newRedis(target: string, options: RedisOptions): Redis;
export function newRedis(target: RedisTarget | string, options: RedisOptions): RedisClient;
export function newRedis(target: RedisTarget | string, options: RedisOptions): RedisClient {
  if (typeof target === 'string') return new Redis(target, options);
  if ('url' in target) return new Redis(target.url, options);
  const password = target.password ? { password: target.password } : {};
  if ('sentinels' in target) return new Redis({ sentinels: target.sentinels, name: target.name, ...password, ...options });
  const { enableOfflineQueue, retryStrategy, ...nodeOptions } = options;
  return new Cluster(target.cluster, {
    redisOptions: { ...password, ...nodeOptions },
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
  });
}

/** How long a caller waits for a cluster to have discovered its masters. */
const CLUSTER_READY_MS = 10_000;

/**
 * Every master of a cluster, or the one Redis: where a SCAN or a clock must be read. A cluster
 * knows its masters only once it is ready (before that, `nodes()` holds the few it was given,
 * or none): this waits for it, up to 10 s.
 */
export async function masters(redis: RedisClient): Promise<Redis[]> {
  if (!(redis instanceof Cluster)) return [redis];
  if (redis.status !== 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisUnavailableError(`cluster not ready after ${CLUSTER_READY_MS / 1000} s: ${redis.status}`)), CLUSTER_READY_MS);
    });
    // Not events.once: it would reject on the 'error' events of reconnect attempts meanwhile.
    await Promise.race([new Promise((resolve) => redis.once('ready', resolve)), late]).finally(() => clearTimeout(timer));
  }
  return redis.nodes('master');
}

/**
 * A Redis connection for a request path, reconnecting in the background. Callers check `isReady`
 * first and fail closed (or spool) at once instead of waiting. Not auto-pipelined: the sidecar's
 * decider already sends each tick's decisions as one EVALSHA, and ioredis's auto-pipelining only
 * adds a setImmediate and a Pipeline per call (sidecar alone at 400 decisions/s, in-sidecar p99
 * 0.96-1.10 -> 0.63-0.73 ms).
 */
export function connectFailFast(target: string, options?: RedisOptions): Redis;
export function connectFailFast(target: RedisTarget | string, options?: RedisOptions): RedisClient;
export function connectFailFast(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return newRedis(target, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1000),
    ...options,
  });
}

/**
 * The keys matching a SCAN pattern, on every master of a cluster (never KEYS, which blocks
 * Redis). A key is found once even if SCAN returns it twice.
 */
export async function scanKeys(redis: RedisClient, match: string): Promise<string[]> {
  const found = new Set<string>();
  for (const node of await masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) found.add(key);
    } while (cursor !== '0');
  }
  return [...found];
}

/** True when commands sent now go straight to a connected server. */
export function isReady(redis: RedisClient): boolean {
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

/** The error a decision gets at once while the sidecar's circuit breaker is open (Redis timed out again and again). */
export class RedisBreakerOpenError extends RedisUnavailableError {
  override readonly code = 'redis_unavailable';
  constructor() {
    super('circuit breaker open: recent decisions timed out');
    this.name = 'RedisBreakerOpenError';
  }
}

/** The error a request path raises when Redis did not answer in time for the caller. */
export class RedisTimeoutError extends Error {
  readonly code = 'redis_timeout';
  /** `sent`: the command had been sent, and Redis did not answer in time (not just a caller out of time). */
  constructor(when: string, readonly sent = true) {
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

/**
 * A connection for BullMQ workers, as BullMQ's production guide asks: `maxRetriesPerRequest:
 * null` (a worker's blocking and locking commands wait through an outage instead of failing
 * after N reconnects, which BullMQ refuses for workers), the offline queue on (commands issued
 * while Redis is away run once it is back), and a reconnect backoff capped at 1 s (an audit job
 * waits at most that long after Redis is back). Commands whose reply a kill lost are re-sent
 * after the reconnect (ioredis' default): BullMQ's scripts check the job's lock token, so a
 * re-run finds the lock gone and changes nothing; a job left in `active` that way is recovered
 * by the stalled-job check (audit-worker/worker.ts JOB_LOCKING).
 */
export function connectPatient(target: string, options?: RedisOptions): Redis;
export function connectPatient(target: RedisTarget | string, options?: RedisOptions): RedisClient;
export function connectPatient(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return newRedis(target, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 1000), ...options });
}
