/** Entry point of the audit worker: wiring only. Configured by the environment (common/env.ts). */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { Queue } from 'bullmq';
import { AUDIT_QUEUE } from '../common/audit-queue.js';
import { loadConfig } from '../common/config/load.js';
import { readEnv, workerEnvSchema } from '../common/env.js';
import { createLogger } from '../common/logger.js';
import { connectPatient, isReady } from '../common/redis.js';
import { redisTarget } from '../common/redis-target.js';
import { RedisKeys } from '../common/redis-keys.js';
import { runMain } from '../common/run-main.js';
import { LiveConfig } from '../common/config/live-config.js';
import { configInfo } from '../common/metrics.js';
import { reloadingHttpsServer } from '../common/https-server.js';
import { StatusServer } from '../common/status-server.js';
import { AlertStore } from './anomaly/alert-store.js';
import { AnomalyRules } from './anomaly/anomaly-rules.js';
import { WebhookDelivery, webhookDeliveryOptions } from './anomaly/webhook-delivery.js';
import { WebhookOutbox } from './anomaly/webhook-outbox.js';
import { ChainSealer, sealerOptions } from './chain/sealer.js';
import { verifyChain } from './chain/verifier.js';
import { FailedJobsWatch } from './failed-jobs.js';
import { buildQueryApi } from './query-api.js';
import { EventStore } from './store/event-store.js';
import { Retention } from './store/retention.js';
import { SecurityEventStore } from './store/security-event-store.js';
import { openPGlite, openPostgres } from './store/sql-client.js';
import { WorkerMetrics } from './metrics.js';
import { buildWorker } from './worker.js';
import { newWorkerStats } from './worker-stats.js';

// Active jobs are single batch inserts: a minute covers a slow database.
runMain('audit-worker', { stopTimeoutMs: 60_000 }, async (onStop) => {
  const env = readEnv(workerEnvSchema);
  const logger = createLogger('audit-worker', env.LOG_LEVEL);
  const config = loadConfig(env.GATEWAY_CONFIG);
  // Read before anything opens: a missing or short secret stops the worker at once, naming the variable.
  const webhookOptions = webhookDeliveryOptions(config.anomaly.webhook);

  const sql = env.AUDIT_DB_URL
    ? await openPostgres(env.AUDIT_DB_URL, env.AUDIT_DB_SCHEMA, { onError: (err) => logger.warn('idle database connection failed', { err }) })
    : await openPGlite(env.AUDIT_DATA_DIR);
  const store = new EventStore(sql, { retentionDays: config.audit.retention_days });
  await store.migrate();
  const retention = new Retention(store, config.audit.retention_days, logger);
  await retention.runLogged();
  retention.start();

  const stats = newWorkerStats();
  const redis = connectPatient(redisTarget(env));
  redis.on('error', (err) => logger.warn('redis connection error', { code: 'redis_error', error: err.message }));
  const keys = RedisKeys.of(env.REDIS_PREFIX, redis);
  const prefix = keys.queuePrefix;
  const webhook = webhookOptions && new WebhookDelivery(new WebhookOutbox(sql), webhookOptions, logger);
  const alerts = new AlertStore(sql, webhook ? { onWebhookQueued: () => webhook.wake() } : {});
  const security = new SecurityEventStore(sql);
  const anomaly = new AnomalyRules(redis, keys, config.anomaly, { alerts, securityEvents: security }, logger);
  const queue = new Queue(AUDIT_QUEUE, { connection: redis, prefix });
  const metrics = new WorkerMetrics(stats, () => anomaly.raised, queue);
  // The worker reads only `anomaly` and `audit`, at start: a file changing them waits for a restart; any other change is taken (its hash).
  const live = new LiveConfig({ file: env.GATEWAY_CONFIG, logger, restartOnly: ['anomaly', 'audit'], apply: () => undefined }, config);
  live.start();
  configInfo(metrics.registry, 'worker', () => live.hash);
  const status = await StatusServer.start({
    host: env.STATUS_HOST,
    port: env.WORKER_STATUS_PORT,
    registry: metrics.registry,
    readiness: async () => ({ redis: isReady(redis), store: await sql.query('SELECT 1').then(() => true, () => false) }),
    details: () => ({ config_hash: live.hash }),
    logger,
  });
  const worker = buildWorker({ connection: redis, prefix, store, security, logger, concurrency: env.AUDIT_CONCURRENCY, stats, anomaly, storedLag: (events) => metrics.stored(events) });
  anomaly.start();
  const failed = new FailedJobsWatch(queue, logger);
  failed.start();
  webhook?.start();
  const sealer = new ChainSealer(sql, logger, sealerOptions(config.audit.chain));
  sealer.start();

  if (!env.ADMIN_TOKEN) logger.warn('ADMIN_TOKEN is not set: the query API answers 503 admin_disabled');
  const api = buildQueryApi({ store, alerts, security, investigation: sql, auditQueries: security, verify: (options) => verifyChain(sql, options), adminToken: env.ADMIN_TOKEN, logger, health: () => ({ ...stats, failed_jobs: failed.count ?? null, chain: sealer.status() }) });
  const apiTls = config.audit.api_tls;
  const secure = apiTls && reloadingHttpsServer({}, api, apiTls, env.GATEWAY_CONFIG, 'audit.api_tls', logger);
  const server = (secure ? secure.server : createServer(api)).listen(env.AUDIT_PORT, env.AUDIT_HOST);
  await once(server, 'listening');
  const address = server.address();
  logger.info('ready', {
    port: typeof address === 'object' && address ? address.port : env.AUDIT_PORT,
    host: env.AUDIT_HOST,
    tls: apiTls !== undefined,
    status_port: status.port,
    config_hash: live.hash,
    store: env.AUDIT_DB_URL ? `postgres (schema ${env.AUDIT_DB_SCHEMA})` : `pglite (${env.AUDIT_DATA_DIR})`,
    concurrency: env.AUDIT_CONCURRENCY,
    // The host only: a webhook URL's path or query may be a credential.
    alert_webhook: webhookOptions ? new URL(webhookOptions.url).host : null,
  });

  onStop(async () => {
    logger.info('stopping');
    status.drain();
    live.stop();
    failed.stop();
    await worker.close(); // waits for active jobs to finish
    await retention.stop();
    await anomaly.close().catch((err: Error) => logger.warn('last volume_spike counts not sent', { code: 'anomaly_volume_failed', error: err.message }));
    await webhook?.stop(); // after the jobs, which may queue changes; before the store closes
    await sealer.stop();
    secure?.unwatch();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sql.close();
    await redis.quit().catch(() => redis.disconnect());
    await status.close();
    logger.info('stopped');
  });
});
