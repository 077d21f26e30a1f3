/**
 * Where Redis is, from the environment, for every process and both CLIs:
 * - `REDIS_URL` (default `redis://127.0.0.1:6379`; `rediss://` for TLS, credentials in the URL);
 * - or Redis Sentinel: `REDIS_SENTINELS` (`host:port,host:port`), `REDIS_SENTINEL_NAME` (the
 *   monitored master's name, default `mymaster`) and `REDIS_PASSWORD` (the master's, if any).
 *   The connection asks the sentinels for the current master and follows a failover;
 * - or Redis Cluster: `REDIS_CLUSTER_NODES` (`host:port,host:port`, any few nodes of the
 *   cluster: the rest is discovered) and `REDIS_PASSWORD`. Keys are then laid out by hash tag
 *   (common/redis-keys.ts), so each Lua call's keys share one slot.
 */
import { z } from 'zod';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { url: string }
  | { sentinels: HostPort[]; name: string; password?: string | undefined }
  | { cluster: HostPort[]; password?: string | undefined };

const HOST_PORT = /^([^\s:,]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/** A comma-separated `host:port` list (empty: unset). */
function hostPortList(what: string) {
  return z
    .string()
    .optional()
    .transform((text, ctx): HostPort[] | undefined => {
      if (text === undefined || text.trim() === '') return undefined;
      const found = text.split(',').map((s) => HOST_PORT.exec(s.trim()));
      if (found.some((m) => !m || Number(m[2]) < 1 || Number(m[2]) > 65_535)) {
        ctx.addIssue({ code: 'custom', message: `must be host:port of each ${what}, comma-separated` });
        return z.NEVER;
      }
      return found.map((m) => ({ host: m![1]!.replace(/^\[|\]$/g, ''), port: Number(m![2]) }));
    });
}

export const redisEnvShape = {
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  REDIS_SENTINELS: hostPortList('sentinel'),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('mymaster'),
  REDIS_CLUSTER_NODES: hostPortList('cluster node'),
  REDIS_PASSWORD: z.string().min(1).optional(),
};

export const redisEnvSchema = z.object(redisEnvShape);
export type RedisEnv = z.output<typeof redisEnvSchema>;

/** The problem with an environment that names two kinds of Redis, for the env error; else undefined. */
export function conflictingRedisTargets(env: Partial<RedisEnv>): string | undefined {
  return env.REDIS_SENTINELS && env.REDIS_CLUSTER_NODES ? 'REDIS_CLUSTER_NODES: set it or REDIS_SENTINELS, not both' : undefined;
}

export function redisTarget(env: RedisEnv): RedisTarget {
  if (env.REDIS_CLUSTER_NODES) return { cluster: env.REDIS_CLUSTER_NODES, password: env.REDIS_PASSWORD };
  if (env.REDIS_SENTINELS) return { sentinels: env.REDIS_SENTINELS, name: env.REDIS_SENTINEL_NAME, password: env.REDIS_PASSWORD };
  return { url: env.REDIS_URL };
}

/** The target for logs: never a password. */
export function describeRedis(target: RedisTarget): string {
  const list = (nodes: HostPort[]) => nodes.map((s) => `${s.host}:${s.port}`).join(',');
  if ('url' in target) return target.url.replace(/\/\/[^@/]*@/, '//');
  if ('cluster' in target) return `cluster via ${list(target.cluster)}`;
  return `sentinel master ${target.name} via ${list(target.sentinels)}`;
}
