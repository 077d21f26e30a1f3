import './gc-tuning.js';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import { AUDIT_QUEUE } from '../common/audit-queue.js';
import { loadConfig } from '../common/config/load.js';
import { gatewayEnvSchema, readEnv } from '../common/env.js';
import { createLogger } from '../common/logger.js';
import { connectFailFast, isReady } from '../common/redis.js';
import { redisTarget } from '../common/redis-target.js';
import { RedisKeys } from '../common/redis-keys.js';
import { runMain } from '../common/run-main.js';
import { buildGateway } from './app.js';
import { DiskSpool } from './audit/disk-spool.js';
import { AuditPublisher } from './audit/publisher.js';
import { answerClientError } from './client-error.js';
import { SpoolOwner } from './audit/spool-owner.js';
import { SidecarPool } from './sidecar-pool.js';
import { SecurityWatch } from './websocket/security-watch.js';

/** While stopping, how often keep-alive connections that have become idle are closed. */
const IDLE_CLOSE_EVERY_MS = 20;

runMain('gateway', {}, async (onStop) => {
  const env = readEnv(gatewayEnvSchema);
  const logger = createLogger('gateway', env.LOG_LEVEL);
  const config = loadConfig(env.GATEWAY_CONFIG);
  // Unique per process by default: replicas on one host must not share an id or a spool folder.
  const gatewayId = env.GATEWAY_ID ?? `${hostname().slice(0, 55)}-${randomBytes(4).toString('hex')}`;
  const settings = config.gateway;

  const redis = connectFailFast(redisTarget(env));
  redis.on('error', (err: Error) => logger.warn('redis error', { error: err.message }));
  const queue = new Queue(AUDIT_QUEUE, { connection: redis, prefix: RedisKeys.of(env.REDIS_PREFIX, redis).queuePrefix });
  queue.on('error', (err: Error) => logger.warn('audit queue error', { error: err.message }));
  const owner = new SpoolOwner(env.AUDIT_SPOOL_DIR, gatewayId, { heartbeatMs: 5_000, staleMs: 30_000 });
  const spool = new DiskSpool(owner.dir, settings.audit_spool_max_mb * 1024 * 1024);
  owner.claim();
  const adopted = (batches: number): void => {
    logger.warn('adopted the spooled audit batches of a gateway that is gone', { code: 'audit_spool_adopted', batches });
  };
  const adoptedAtStart = await owner.adoptOrphans(spool);
  if (adoptedAtStart > 0) adopted(adoptedAtStart);
  owner.keep(spool, adopted, (err) => logger.error('audit spool upkeep failed', { code: 'audit_spool_upkeep', error: err.message }));
  const publisher = new AuditPublisher(
    queue,
    spool,
    {
      batchSize: settings.audit_batch_size,
      flushMs: settings.audit_flush_ms,
      addTimeoutMs: 2_000,
      replayEveryMs: 1_000,
      strandedAfterMs: 60_000,
      queueReady: () => isReady(redis),
    },
    logger,
  );
  const sidecar = await SidecarPool.open(env.SIDECAR_ADDR, settings.check_deadline_ms, logger);
  const health = () => ({ sidecar: sidecar.isConnected(), audit_queue: isReady(redis) });
  const gateway = buildGateway({ config, sidecar, publisher, gatewayId, logger, health, sidecars: () => sidecar.status(), spool: () => publisher.spoolStats() });
  // Only a gateway with WebSocket routes holds connections a later revocation must end.
  const watch = config.routes.some((r) => r.websocket) ? new SecurityWatch(redis, RedisKeys.of(env.REDIS_PREFIX, redis), gateway.openSockets, logger) : undefined;
  watch?.start();

  // Tight by default: a client sending a header byte a second is closed within headers_timeout_ms
  // plus one check, not Node's 60 s plus a 30 s check.
  const server = createServer(
    {
      headersTimeout: settings.headers_timeout_ms,
      requestTimeout: settings.request_timeout_ms,
      keepAliveTimeout: settings.keep_alive_timeout_ms,
      connectionsCheckingInterval: settings.connections_check_ms,
      // Node would answer 400 itself, outside the audit: the handler refuses it (host_missing).
      requireHostHeader: false,
    },
    gateway.listener,
  );
  server.on('clientError', answerClientError((event) => publisher.publish(event), gatewayId));
  server.on('upgrade', gateway.upgrade);
  await new Promise<void>((resolve) => server.listen(env.GATEWAY_PORT, env.GATEWAY_HOST, resolve));
  const address = server.address();
  logger.info('ready', {
    port: typeof address === 'object' && address ? address.port : env.GATEWAY_PORT,
    gateway_id: gatewayId,
    routes: config.routes.length,
    spool: spool.stats(),
  });

  onStop(async () => {
    // Stop taking requests, let in-flight ones finish (their audit events are published on close), then flush.
    // server.close() closes only the connections idle at that moment: a keep-alive client that
    // keeps sending would hold the server open until the stop timeout (exit 1). So each
    // connection is closed as soon as it is idle, i.e. once its current response is done.
    await new Promise<void>((resolve) => {
      const closeIdle = setInterval(() => server.closeIdleConnections(), IDLE_CLOSE_EVERY_MS);
      server.close(() => {
        clearInterval(closeIdle);
        resolve();
      });
      server.closeIdleConnections();
    });
    watch?.stop();
    gateway.close();
    sidecar.close();
    await publisher.close();
    owner.release();
    await queue.close().catch(() => undefined);
    redis.disconnect();
  });
});
