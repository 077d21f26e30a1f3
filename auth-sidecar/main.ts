import { loadConfig } from '../common/config/load.js';
import { readEnv, sidecarEnvSchema } from '../common/env.js';
import { createLogger } from '../common/logger.js';
import { connectFailFast, NO_LATE_COMMANDS } from '../common/redis.js';
import { redisTarget } from '../common/redis-target.js';
import { runMain } from '../common/run-main.js';
import { loadIssuerKeys } from './jwt/issuer-keys.js';
import { bindServer, buildSidecar } from './server.js';

runMain('auth-sidecar', {}, async (onStop) => {
  const env = readEnv(sidecarEnvSchema);
  const logger = createLogger('auth-sidecar', env.LOG_LEVEL);
  const config = loadConfig(env.GATEWAY_CONFIG);
  const issuers = loadIssuerKeys(config.issuers, env.GATEWAY_CONFIG, process.env, logger);
  const redis = connectFailFast(redisTarget(env), NO_LATE_COMMANDS);
  redis.on('error', (err: Error) => logger.warn('redis error', { error: err.message }));

  const { server, health, mirror } = buildSidecar({ config, issuers, redis, redisPrefix: env.REDIS_PREFIX, logger });
  const port = await bindServer(server, env.SIDECAR_HOST, env.SIDECAR_PORT);
  logger.info('ready', { port, issuers: issuers.map((i) => i.config.name), routes: config.routes.length });

  onStop(async () => {
    health.setStatus('', 'NOT_SERVING');
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    mirror?.stop();
    redis.disconnect();
  });
});
