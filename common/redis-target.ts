/**
 * Where Redis is, from the environment, for every process and both CLIs:
 * - `REDIS_URL` (default `redis://127.0.0.1:6379`; `rediss://` for TLS, credentials in the URL);
 * - or Redis Sentinel: `REDIS_SENTINELS` (`host:port,host:port`), `REDIS_SENTINEL_NAME` (the
 *   monitored master's name, default `mymaster`) and `REDIS_PASSWORD` (the master's, if any).
 *   The connection asks the sentinels for the current master and follows a failover.
 */
import { z } from 'zod';

export type RedisTarget = { url: string } | { sentinels: { host: string; port: number }[]; name: string; password?: string | undefined };

const HOST_PORT = /^([^\s:,]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

export const redisEnvShape = {
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  REDIS_SENTINELS: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      const sentinels = text.split(',').map((s) => HOST_PORT.exec(s.trim()));
      if (sentinels.some((m) => !m || Number(m[2]) < 1 || Number(m[2]) > 65_535)) {
        ctx.addIssue({ code: 'custom', message: 'must be host:port of each sentinel, comma-separated' });
        return z.NEVER;
      }
      return sentinels.map((m) => ({ host: m![1]!.replace(/^\[|\]$/g, ''), port: Number(m![2]) }));
    }),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('mymaster'),
  REDIS_PASSWORD: z.string().min(1).optional(),
};

export const redisEnvSchema = z.object(redisEnvShape);
export type RedisEnv = z.output<typeof redisEnvSchema>;

export function redisTarget(env: RedisEnv): RedisTarget {
  if (env.REDIS_SENTINELS) return { sentinels: env.REDIS_SENTINELS, name: env.REDIS_SENTINEL_NAME, password: env.REDIS_PASSWORD };
  return { url: env.REDIS_URL };
}

/** The target for logs: never a password. */
export function describeRedis(target: RedisTarget): string {
  if ('url' in target) return target.url.replace(/\/\/[^@/]*@/, '//');
  return `sentinel master ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}
