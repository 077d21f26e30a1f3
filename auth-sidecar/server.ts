import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { Cluster } from 'ioredis';
import type { GatewayConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import { loadAuthProto, type AuthServiceHandlers } from '../common/proto.js';
import type { RedisClient } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import type { TrustedIssuer } from './jwt/issuer-keys.js';
import { VerifiedTokenCache } from './jwt/verified-cache.js';
import { TokenVerifier } from './jwt/verifier.js';
import { BanMirror } from './limiter/ban-mirror.js';
import { RedisDecider } from './limiter/redis-decider.js';
import { CheckService } from './service/check-service.js';
import { serveCheckStream } from './service/check-stream.js';

/** ~10k active tokens at ~1 KiB each: ~10 MiB at most. Five minutes bounds how long a rotated key's tokens live on. */
const TOKEN_CACHE = { maxEntries: 10_000, maxAgeSeconds: 300 };

export interface SidecarDeps {
  config: GatewayConfig;
  issuers: readonly TrustedIssuer[];
  redis: RedisClient;
  redisPrefix: string;
  logger: Logger;
}

export interface Sidecar {
  server: grpc.Server;
  health: HealthImplementation;
  checks: CheckService;
  /** On a Redis Cluster: the copy of revoked jtis and ip bans (started; stop it on shutdown). */
  mirror: BanMirror | undefined;
}

/** Builds the gRPC server (AuthService + grpc.health.v1) without binding a port. */
export function buildSidecar(deps: SidecarDeps): Sidecar {
  const keys = RedisKeys.of(deps.redisPrefix, deps.redis);
  const mirror = deps.redis instanceof Cluster ? new BanMirror(deps.redis, keys, deps.logger) : undefined;
  mirror?.start();
  const checks = new CheckService({
    config: deps.config,
    verifier: new VerifiedTokenCache(new TokenVerifier(deps.issuers), TOKEN_CACHE),
    decider: new RedisDecider(deps.redis, keys, mirror),
    keys,
    logger: deps.logger,
  });
  const handlers: AuthServiceHandlers = {
    Check(call, callback) {
      checks.check(call.request).then(
        (response) => callback(null, response),
        (err: Error) => {
          deps.logger.error('check failed', { request_id: call.request.request_id, error: err.message });
          return callback({ code: grpc.status.INTERNAL, details: 'check failed' });
        },
      );
    },
    CheckStream: serveCheckStream(checks, deps.logger),
  };
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(loadAuthProto().auth.v1.AuthService.service, handlers);
  const health = new HealthImplementation({ '': 'SERVING', 'auth.v1.AuthService': 'SERVING' });
  health.addToServer(server);
  return { server, health, checks, mirror };
}

/** Binds `host:port` (port 0 picks a free one) and resolves the bound port. */
export function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
}
