import { loadConfig } from '../common/config/load.js';
import { ownIssuerOf, type GatewayConfig } from '../common/config/schema.js';
import { EnvError, readEnv, sidecarEnvSchema, type SidecarEnv } from '../common/env.js';
import { createLogger, type Logger } from '../common/logger.js';
import { connectFailFast, isReady, NO_LATE_COMMANDS, type RedisClient } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import { SigningKeyStore } from '../common/signing-keys.js';
import { OwnKeys } from './issuing/own-keys.js';
import { PasswordHasher } from './issuing/password-hasher.js';
import { redisTarget } from '../common/redis-target.js';
import { runMain } from '../common/run-main.js';
import { LiveConfig } from '../common/config/live-config.js';
import { configInfo } from '../common/metrics.js';
import { sidecarServerCredentials } from '../common/grpc-tls.js';
import { StatusServer } from '../common/status-server.js';
import { loadIssuerKeys } from './jwt/issuer-keys.js';
import { bindServer, buildSidecar } from './server.js';

/** With token_issuing: the own issuer's signing keys, read (or made) and kept fresh, and the password checker. */
async function startIssuing(config: GatewayConfig, env: SidecarEnv, redis: RedisClient, logger: Logger): Promise<{ keys: OwnKeys; hasher: PasswordHasher } | undefined> {
  const own = ownIssuerOf(config);
  if (!own) return undefined;
  if (!env.SIGNING_KEY_SECRET) throw new EnvError([`SIGNING_KEY_SECRET: required: issuer ${own.issuer.name} signs tokens with keys kept encrypted in Redis`]);
  const keys = new OwnKeys(new SigningKeyStore(redis, RedisKeys.of(env.REDIS_PREFIX, redis)), own.issuer, own.issuing, env.SIGNING_KEY_SECRET, logger);
  await keys.start();
  return { keys, hasher: new PasswordHasher(own.issuing.bcrypt_cost) };
}

/**
 * Config keys the sidecar reads only at start: its issuers' keys and its own (token issuing), its
 * gRPC credentials, its Redis breaker. Routes, tiers, limits, ACLs, overrides and the decision
 * timeout apply live.
 */
const SIDECAR_RESTART_ONLY = ['issuers', 'token_issuing', 'sidecar.tls', 'sidecar.redis_breaker'];

runMain('auth-sidecar', {}, async (onStop) => {
  const env = readEnv(sidecarEnvSchema);
  const logger = createLogger('auth-sidecar', env.LOG_LEVEL);
  const config = loadConfig(env.GATEWAY_CONFIG);
  const redis = connectFailFast(redisTarget(env), NO_LATE_COMMANDS);
  redis.on('error', (err: Error) => logger.warn('redis error', { error: err.message }));
  const issuing = await startIssuing(config, env, redis, logger);
  const issuers = loadIssuerKeys(config.issuers, env.GATEWAY_CONFIG, process.env, logger, issuing?.keys);

  const { server, mirror, revokedKids, overrides, metrics, spans, drain, reload } = buildSidecar({ config, issuers, redis, redisPrefix: env.REDIS_PREFIX, logger, issuing });
  const live = new LiveConfig({ file: env.GATEWAY_CONFIG, logger, restartOnly: SIDECAR_RESTART_ONLY, apply: reload }, config);
  live.start();
  configInfo(metrics.registry, 'sidecar', () => live.hash);
  const status = await StatusServer.start({
    host: env.STATUS_HOST,
    port: env.SIDECAR_STATUS_PORT,
    registry: metrics.registry,
    readiness: () => ({ redis: isReady(redis), ...(mirror && { ban_copy: mirror.isSynced }) }),
    details: () => ({ config_hash: live.hash }),
    logger,
  });
  const port = await bindServer(server, env.SIDECAR_HOST, env.SIDECAR_PORT, sidecarServerCredentials(config, env.GATEWAY_CONFIG));
  logger.info('ready', { port, tls: config.sidecar.tls ? (config.sidecar.tls.client_ca_file ? 'mutual' : 'server') : 'off', status_port: status.port, issuers: issuers.map((i) => i.config.name), routes: config.routes.length, config_hash: live.hash });

  onStop(async () => {
    // Not ready, NOT_SERVING, from now on: before the listener closes.
    status.drain();
    drain();
    live.stop();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    mirror?.stop();
    revokedKids.stop();
    overrides.stop();
    issuing?.keys.stop();
    await Promise.all([issuing?.hasher.close(), spans.close()]);
    redis.disconnect();
    await status.close();
  });
});
