import './gc-tuning.js';
import type { Server } from 'node:http';
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
import { StatusServer } from '../common/status-server.js';
import { buildGateway } from './app.js';
import { LiveGateway } from './live-gateway.js';
import { OpenSockets } from './websocket/open-sockets.js';
import { LiveConfig } from '../common/config/live-config.js';
import { configInfo, spanExportMetrics } from '../common/metrics.js';
import { DiskSpool } from './audit/disk-spool.js';
import { AuditPublisher } from './audit/publisher.js';
import { answerClientError } from './client-error.js';
import { openListeners } from './listeners.js';
import { SpoolOwner } from './audit/spool-owner.js';
import { GatewayMetrics } from './metrics.js';
import { SidecarPool } from './sidecar-pool.js';
import { sidecarChannel } from '../common/grpc-tls.js';
import { SecurityWatch } from './websocket/security-watch.js';
import { SpanExporter } from '../common/tracing/span-exporter.js';
import type { GatewayConfig } from '../common/config/schema.js';

/** While stopping, how often keep-alive connections that have become idle are closed. */
const IDLE_CLOSE_EVERY_MS = 20;

/** Closes `server` once its in-flight requests are answered, each keep-alive connection as soon as it is idle. */
function closeGracefully(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const closeIdle = setInterval(() => server.closeIdleConnections(), IDLE_CLOSE_EVERY_MS);
    server.close(() => {
      clearInterval(closeIdle);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** Config keys the gateway reads only at start (its listeners, its sidecar channel, its audit publisher); everything else applies live. */
const GATEWAY_RESTART_ONLY = [
  'gateway.check_deadline_ms',
  'gateway.audit_batch_size',
  'gateway.audit_flush_ms',
  'gateway.audit_spool_max_mb',
  'gateway.headers_timeout_ms',
  'gateway.request_timeout_ms',
  'gateway.keep_alive_timeout_ms',
  'gateway.connections_check_ms',
  'gateway.tls',
  'gateway.sidecar_tls',
];

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
  const sidecar = await SidecarPool.open(env.SIDECAR_ADDR, settings.check_deadline_ms, logger, sidecarChannel(config, env.GATEWAY_CONFIG));
  const health = () => ({ sidecar: sidecar.isConnected(), audit_queue: isReady(redis) });
  const metrics = new GatewayMetrics(publisher);
  const tls = config.gateway.tls;
  const httpsPort = tls?.plain_http === 'redirect' ? (tls.redirect_port ?? env.GATEWAY_HTTPS_PORT) : undefined;
  const openSockets = new OpenSockets();
  const spans = new SpanExporter('apigw-gateway', gatewayId, logger);
  spans.configure(config.tracing.otlp);
  spanExportMetrics(metrics.registry, 'gateway', spans.counts);
  const build = (current: GatewayConfig, configHash: string) =>
    buildGateway({ config: current, configHash, sidecar, publisher, gatewayId, logger, health, sidecars: () => sidecar.status(), spool: () => publisher.spoolStats(), metrics, httpsPort, openSockets, spans });
  const apply = (next: GatewayConfig, hash: string): void => {
    spans.configure(next.tracing.otlp);
    gateway.swap(next, hash);
  };
  const live = new LiveConfig({ file: env.GATEWAY_CONFIG, logger, restartOnly: GATEWAY_RESTART_ONLY, apply }, config);
  const gateway = new LiveGateway(build, config, live.hash);
  live.start();
  configInfo(metrics.registry, 'gateway', () => live.hash);
  const status = await StatusServer.start({ host: env.STATUS_HOST, port: env.GATEWAY_STATUS_PORT, registry: metrics.registry, readiness: health, details: () => ({ config_hash: live.hash }), logger });
  // Ends the WebSockets of a token revoked or a client banned later (a reload may add WebSocket routes: always on).
  const watch = new SecurityWatch(redis, RedisKeys.of(env.REDIS_PREFIX, redis), openSockets, logger);
  watch.start();

  const listeners = await openListeners({
    config,
    configFile: env.GATEWAY_CONFIG,
    host: env.GATEWAY_HOST,
    httpPort: env.GATEWAY_PORT,
    httpsPort: env.GATEWAY_HTTPS_PORT,
    listener: gateway.listener,
    upgrade: gateway.upgrade,
    clientError: answerClientError((event) => publisher.publish(event), () => ({ gatewayId, configHash: live.hash })),
    logger,
  });
  logger.info('ready', {
    port: listeners.ports.http ?? null,
    https_port: listeners.ports.https ?? null,
    status_port: status.port,
    gateway_id: gatewayId,
    routes: config.routes.length,
    config_hash: live.hash,
    spool: spool.stats(),
  });

  onStop(async () => {
    // Not ready from now on (a balancer stops sending), before the listener closes.
    status.drain();
    live.stop();
    // Stop taking requests, let in-flight ones finish (their audit events are published on close), then flush.
    // server.close() closes only the connections idle at that moment: a keep-alive client that
    // keeps sending would hold the server open until the stop timeout (exit 1). So each
    // connection is closed as soon as it is idle, i.e. once its current response is done.
    listeners.unwatch();
    await Promise.all(listeners.servers.map((server) => closeGracefully(server)));
    watch.stop();
    gateway.close();
    sidecar.close();
    await Promise.all([publisher.close(), spans.close()]);
    owner.release();
    await queue.close().catch(() => undefined);
    redis.disconnect();
    await status.close();
  });
});
