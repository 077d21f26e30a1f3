import * as grpc from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { SpanExporter } from '../common/tracing/span-exporter.js';
import { spanExportMetrics } from '../common/metrics.js';
import { HealthImplementation } from 'grpc-health-check';
import { Cluster } from 'ioredis';
import type { GatewayConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import { loadAuthProto, type AuthServiceHandlers } from '../common/proto.js';
import { isReady, type RedisClient } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import type { TrustedIssuer } from './jwt/issuer-keys.js';
import { VerifiedTokenCache } from './jwt/verified-cache.js';
import { TokenVerifier } from './jwt/verifier.js';
import { RevokedKids } from './jwt/revoked-kids.js';
import { LimitOverrides } from './limiter/limit-overrides.js';
import { BanMirror } from './limiter/ban-mirror.js';
import { CircuitBreaker } from './limiter/circuit-breaker.js';
import { RedisDecider } from './limiter/redis-decider.js';
import { ownIssuerOf } from '../common/config/schema.js';
import { isBanned, revokeJti } from '../common/security-state.js';
import { Users } from '../common/users.js';
import { LoginThrottle } from './issuing/login-throttle.js';
import type { OwnKeys } from './issuing/own-keys.js';
import type { PasswordHasher } from './issuing/password-hasher.js';
import { RefreshFamilies } from './issuing/refresh-families.js';
import { TokenEndpoints } from './issuing/token-endpoints.js';
import { CheckService } from './service/check-service.js';
import { serveCheckStream } from './service/check-stream.js';
import { SidecarMetrics } from './metrics.js';

/** ~10k active tokens at ~1 KiB each: ~10 MiB at most. Five minutes bounds how long a rotated key's tokens live on. */
const TOKEN_CACHE = { maxEntries: 10_000, maxAgeSeconds: 300 };

export interface SidecarDeps {
  config: GatewayConfig;
  issuers: readonly TrustedIssuer[];
  redis: RedisClient;
  redisPrefix: string;
  logger: Logger;
  /** Set when the config has token_issuing: the own issuer's keys (started) and the password checker. */
  issuing?: { keys: OwnKeys; hasher: PasswordHasher };
}

export interface Sidecar {
  server: grpc.Server;
  health: HealthImplementation;
  checks: Pick<CheckService, 'check'>;
  /** On a Redis Cluster: the copy of revoked jtis and ip bans (started; stop it on shutdown). */
  mirror: BanMirror | undefined;
  /** The revoked kids, re-read every 500 ms (started; stop it on shutdown). */
  revokedKids: RevokedKids;
  /** Consumers' own limits, re-read when changed (started; stop it on shutdown). */
  overrides: LimitOverrides;
  metrics: SidecarMetrics;
  /** Says NOT_SERVING from now on, whatever Redis does (the start of a stop). */
  drain(): void;
  /** The OpenTelemetry export of the decisions' spans (config `tracing.otlp`); close it on shutdown. */
  spans: SpanExporter;
  /** Decides by `config` from now on (its routes, limits, ACLs, overrides; not its issuers: see SIDECAR_RESTART_ONLY). */
  reload(config: GatewayConfig): void;
}

/** Builds the gRPC server (AuthService + grpc.health.v1) without binding a port. */
export function buildSidecar(deps: SidecarDeps): Sidecar {
  const keys = RedisKeys.of(deps.redisPrefix, deps.redis);
  const mirror = deps.redis instanceof Cluster ? new BanMirror(deps.redis, keys, deps.logger) : undefined;
  mirror?.start();
  const verifier = new VerifiedTokenCache(new TokenVerifier(deps.issuers), TOKEN_CACHE);
  const revokedKids = new RevokedKids(deps.redis, keys, deps.logger);
  void revokedKids.start();
  const overrides = new LimitOverrides(deps.config.limit_overrides, deps.redis, keys, deps.logger);
  void overrides.start();
  const breaker = new CircuitBreaker(deps.config.sidecar.redis_breaker.failures, deps.config.sidecar.redis_breaker.open_ms);
  const metrics = new SidecarMetrics(
    deps.config.routes.map((r) => r.name),
    { tokenCache: verifier.counts, breakerOpen: () => (breaker.state === 'closed' ? 0 : 1) },
  );
  const decider = new RedisDecider(deps.redis, keys, mirror, breaker, (ms) => metrics.redisCall(ms));
  const spans = new SpanExporter('apigw-auth-sidecar', hostname(), deps.logger);
  spans.configure(deps.config.tracing.otlp);
  spanExportMetrics(metrics.registry, 'sidecar', spans.counts);
  const checksFor = (config: GatewayConfig): CheckService => new CheckService({ config, verifier, revokedKids, overrides, decider, keys, logger: deps.logger, metrics, spans });
  let current = checksFor(deps.config);
  // The handlers ask whichever is current: a check runs start to end under the config it began with.
  const checks: Pick<CheckService, 'check'> = { check: (request, waitedMs) => current.check(request, waitedMs) };
  const tokens = deps.issuing && tokenEndpoints(deps, deps.issuing, keys, verifier);
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
    Token(call, callback) {
      if (!tokens) return callback({ code: grpc.status.UNIMPLEMENTED, details: 'this sidecar issues no tokens: the config has no token_issuing' });
      tokens.handle(call.request).then(
        (response) => callback(null, response),
        (err: Error) => {
          deps.logger.error('token endpoint failed', { request_id: call.request.request_id, path: call.request.path, error: err.message });
          return callback({ code: grpc.status.INTERNAL, details: 'token endpoint failed' });
        },
      );
    },
  };
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(loadAuthProto().auth.v1.AuthService.service, handlers);
  const health = new HealthImplementation({ '': 'NOT_SERVING', 'auth.v1.AuthService': 'NOT_SERVING' });
  health.addToServer(server);
  const drain = servingWhileRedisAnswers(health, deps.redis);
  const reload = (config: GatewayConfig): void => {
    current = checksFor(config);
    spans.configure(config.tracing.otlp);
    overrides.configure(config.limit_overrides);
    metrics.useRoutes(config.routes.map((r) => r.name));
  };
  return { server, health, checks, mirror, revokedKids, overrides, metrics, spans, drain, reload };
}

/**
 * grpc.health.v1 says SERVING only while Redis is connected: without it every decision of an
 * authenticated route fails closed, so a balancer (or the gateway's pool) should prefer another.
 */
function servingWhileRedisAnswers(health: HealthImplementation, redis: RedisClient): () => void {
  let draining = false;
  const set = (status: 'SERVING' | 'NOT_SERVING'): void => {
    const now = draining ? 'NOT_SERVING' : status;
    health.setStatus('', now);
    health.setStatus('auth.v1.AuthService', now);
  };
  set(isReady(redis) ? 'SERVING' : 'NOT_SERVING');
  redis.on('ready', () => set('SERVING'));
  for (const event of ['close', 'reconnecting', 'end']) redis.on(event, () => set('NOT_SERVING'));
  return () => {
    draining = true;
    set('NOT_SERVING');
  };
}

function tokenEndpoints(deps: SidecarDeps, issuing: NonNullable<SidecarDeps['issuing']>, keys: RedisKeys, verifier: VerifiedTokenCache): TokenEndpoints | undefined {
  const own = ownIssuerOf(deps.config);
  if (!own) return undefined;
  return new TokenEndpoints({
    ...own,
    keys: issuing.keys,
    hasher: issuing.hasher,
    users: new Users(deps.redis, keys),
    throttle: new LoginThrottle(deps.redis, keys, own.issuing.login_throttle),
    families: new RefreshFamilies(deps.redis, keys, own.issuing.refresh_token_ttl),
    async ownAccessToken(token) {
      const verdict = await verifier.verify(token);
      return verdict.ok && verdict.identity.issuer === own.issuer.name && verdict.identity.jti !== ''
        ? { jti: verdict.identity.jti, exp: verdict.identity.exp, sub: verdict.identity.sub }
        : undefined;
    },
    async revokeJti(jti, exp, reason) {
      await revokeJti(deps.redis, keys, jti, exp, reason, 'auth-sidecar');
    },
    isBanned: (consumer) => isBanned(deps.redis, keys, { consumer }),
    logger: deps.logger,
  });
}

/** Binds `host:port` (port 0 picks a free one) and resolves the bound port. */
/** `credentials`: TLS or mTLS (common/grpc-tls.ts); default plaintext. */
export function bindServer(server: grpc.Server, host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(`${host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
}
