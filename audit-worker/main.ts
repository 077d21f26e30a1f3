/** Entry point of the audit worker: wiring only. Configured by the environment (common/env.ts). */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { EnvError, readEnv, workerEnvSchema, type WorkerEnv } from '../common/env.js';
import { createLogger } from '../common/logger.js';
import { connectPatient } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import { buildQueryApi } from './query-api.js';
import { EventStore } from './store/event-store.js';
import { openPGlite, openPostgres } from './store/sql-client.js';
import { buildWorker } from './worker.js';

function loadEnv(): Readonly<WorkerEnv> {
  try {
    return readEnv(workerEnvSchema);
  } catch (err) {
    if (err instanceof EnvError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

const env = loadEnv();
const logger = createLogger('audit-worker', env.LOG_LEVEL);

const sql = env.AUDIT_DB_URL
  ? await openPostgres(env.AUDIT_DB_URL, env.AUDIT_DB_SCHEMA, { onError: (err) => logger.warn('idle database connection failed', { err }) })
  : await openPGlite(env.AUDIT_DATA_DIR);
const store = new EventStore(sql);
await store.migrate();

const redis = connectPatient(env.REDIS_URL);
redis.on('error', (err) => logger.warn('redis connection error', { code: 'redis_error', error: err.message }));

const worker = buildWorker({
  connection: redis,
  prefix: new RedisKeys(env.REDIS_PREFIX).queuePrefix,
  store,
  logger,
  concurrency: env.AUDIT_CONCURRENCY,
});

if (!env.ADMIN_TOKEN) logger.warn('ADMIN_TOKEN is not set: the query API answers 503 admin_disabled');
const app = buildQueryApi({ store, adminToken: env.ADMIN_TOKEN, logger });
const server: Server = app.listen(env.AUDIT_PORT, env.AUDIT_HOST);
await once(server, 'listening');
const address = server.address();
const port = typeof address === 'object' && address ? address.port : env.AUDIT_PORT;
logger.info('ready', {
  port,
  host: env.AUDIT_HOST,
  store: env.AUDIT_DB_URL ? `postgres (schema ${env.AUDIT_DB_SCHEMA})` : `pglite (${env.AUDIT_DATA_DIR})`,
  concurrency: env.AUDIT_CONCURRENCY,
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('stopping', { signal });
  try {
    await worker.close(); // waits for active jobs to finish
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sql.close();
    await redis.quit().catch(() => redis.disconnect());
    logger.info('stopped');
    process.exit(0);
  } catch (err) {
    logger.error('shutdown failed', { err });
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
