/**
 * Every environment variable of every process, in one place. Each process reads its slice
 * once in its `main.ts`, and a bad value stops it with a message naming the variable.
 */
import { z } from 'zod';
import { conflictingRedisTargets, redisEnvShape, type RedisEnv } from './redis-target.js';
import { parseSidecarTarget } from './sidecar-target.js';
import { MIN_SIGNING_SECRET_CHARS } from './signing-keys.js';

const port = z.coerce.number().int().min(0).max(65535);
const common = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  GATEWAY_CONFIG: z.string().min(1).default('config/gateway.yml'),
  ...redisEnvShape,
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('gw').describe('Namespace of every Redis key and queue'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  STATUS_HOST: z.string().default('127.0.0.1').describe('Where the status port (/healthz, /readyz, /metrics) listens; 0.0.0.0 for a scraper on another host'),
};
const adminToken = z.string().min(16, 'must be at least 16 characters').optional();

export const gatewayEnvSchema = z.object({
  ...common,
  GATEWAY_PORT: port.default(8080),
  GATEWAY_HOST: z.string().default('0.0.0.0'),
  GATEWAY_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
  SIDECAR_ADDR: z
    .string()
    .default('127.0.0.1:50051')
    .transform((text, ctx) => {
      try {
        return parseSidecarTarget(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (host:port, a comma-separated list of them, or dns:///name:port)` });
        return z.NEVER;
      }
    }),
  AUDIT_SPOOL_DIR: z.string().default('data/spool'),
  GATEWAY_HTTPS_PORT: port.default(8443).describe('The HTTPS listener, when the config has gateway.tls'),
  GATEWAY_STATUS_PORT: port.default(9180).describe('/healthz, /readyz, /metrics (0: any free port)'),
});

export const sidecarEnvSchema = z.object({
  ...common,
  SIDECAR_PORT: port.default(50051),
  SIDECAR_HOST: z.string().default('127.0.0.1'),
  SIGNING_KEY_SECRET: z
    .string()
    .min(MIN_SIGNING_SECRET_CHARS, `must be at least ${MIN_SIGNING_SECRET_CHARS} characters`)
    .optional()
    .describe("Encrypts the private halves of the sidecar's signing keys in Redis; required with token_issuing"),
  SIDECAR_STATUS_PORT: port.default(9181).describe('/healthz, /readyz, /metrics (0: any free port)'),
});

export const workerEnvSchema = z.object({
  ...common,
  AUDIT_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  AUDIT_DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('public'),
  AUDIT_DATA_DIR: z.string().default('data/audit'),
  AUDIT_PORT: port.default(8090),
  AUDIT_HOST: z.string().default('127.0.0.1'),
  AUDIT_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  ADMIN_TOKEN: adminToken,
  WORKER_STATUS_PORT: port.default(9182).describe('/healthz, /readyz, /metrics (0: any free port)'),
});

export type GatewayEnv = z.output<typeof gatewayEnvSchema>;
export type SidecarEnv = z.output<typeof sidecarEnvSchema>;
export type WorkerEnv = z.output<typeof workerEnvSchema>;

/** A bad environment variable; the message names it. */
export class EnvError extends Error {
  readonly code = 'env_invalid';
  constructor(readonly problems: string[]) {
    super(`invalid environment:\n  - ${problems.join('\n  - ')}`);
    this.name = 'EnvError';
  }
}

export function readEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): Readonly<z.output<S>> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    throw new EnvError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const parsed = result.data as z.output<S> & { NODE_ENV?: string; ADMIN_TOKEN?: string };
  const redisConflict = conflictingRedisTargets(parsed as Partial<RedisEnv>);
  if (redisConflict) throw new EnvError([redisConflict]);
  if ('ADMIN_TOKEN' in schema.shape && parsed.NODE_ENV === 'production' && !parsed.ADMIN_TOKEN) {
    throw new EnvError(['ADMIN_TOKEN: required when NODE_ENV is production']);
  }
  return Object.freeze(parsed);
}
