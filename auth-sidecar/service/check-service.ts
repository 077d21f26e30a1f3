import { onRedisFailure, type GatewayConfig, type RouteConfig } from '../../common/config/schema.js';
import { canonicalIp } from '../../common/ip-address.js';
import type { Logger } from '../../common/logger.js';
import type { CheckRequest__Output, CheckResponse } from '../../common/proto.js';
import { RedisBreakerOpenError, RedisTimeoutError } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { TokenIdentity } from '../jwt/claims.js';
import type { RevokedKids } from '../jwt/revoked-kids.js';
import type { TokenVerifier } from '../jwt/verifier.js';
import type { LimitWindow, RedisDecider, StoreVerdict } from '../limiter/redis-decider.js';
import type { LimitOverrides } from '../limiter/limit-overrides.js';
import type { SidecarMetrics } from '../metrics.js';
import { limitWindows } from '../limiter/windows.js';
import { aclAllows, missingScopes } from '../policy/acl.js';
import { limitHeaders } from './limit-headers.js';
import { allow, deny } from './verdicts.js';
import { decisionSpan, traceIdOf } from './decision-span.js';
import { epochMs, type SpanExporter } from '../../common/tracing/span-exporter.js';

export interface CheckDeps {
  config: GatewayConfig;
  verifier: Pick<TokenVerifier, 'verify'>;
  decider: RedisDecider;
  keys: RedisKeys;
  logger: Logger;
  /** Signing keys revoked with `revoke --kid`: every token they signed is refused. */
  revokedKids?: Pick<RevokedKids, 'has'>;
  /** Consumers' own limits in place of their tier's (config and `admin limits set`). */
  overrides?: Pick<LimitOverrides, 'of'>;
  /** Counts every answer (README: Metrics). */
  metrics?: Pick<SidecarMetrics, 'decided'>;
  /** The OpenTelemetry export: each sampled decision's span goes to it while it is enabled. */
  spans?: Pick<SpanExporter, 'enabled' | 'add'>;
}

const BEARER = /^Bearer +([^\s]+) *$/i;
/** Time reserved for the answer to reach the gateway before its deadline. */
const ANSWER_MARGIN_MS = 5;

/**
 * Decides one request: the token is verified locally, then revocation, bans and limits are
 * checked in one Redis round trip, then the ACL answer is applied. Fails closed.
 */
export class CheckService {
  private readonly routes: Map<string, RouteConfig>;

  constructor(private readonly deps: CheckDeps) {
    this.routes = new Map(deps.config.routes.map((r) => [r.name, r]));
  }

  /** `waitedMs`: how long the check waited unread before it got here (see BatchAge). */
  async check(request: CheckRequest__Output, waitedMs = 0): Promise<CheckResponse> {
    const spans = this.deps.spans;
    const startMs = spans?.enabled ? epochMs() - waitedMs : 0;
    const response = await this.decide(request, waitedMs);
    this.deps.metrics?.decided(request.route, response);
    const span = startMs > 0 ? decisionSpan(request, response, startMs) : undefined;
    if (span) spans!.add(span);
    return response;
  }

  private async decide(request: CheckRequest__Output, waitedMs: number): Promise<CheckResponse> {
    const receivedAt = performance.now() - waitedMs;
    const route = this.routes.get(request.route);
    if (!route) return deny('no_route', 'unknown_route');

    let identity: TokenIdentity | undefined;
    const authorization = request.headers['authorization'];
    if (route.auth.mode !== 'none' && authorization !== undefined) {
      // Node keeps the first of several Authorization fields; which token was meant is unknowable.
      if (request.authorization_count > 1) return deny('token_invalid', 'multiple_tokens');
      const token = BEARER.exec(authorization)?.[1];
      if (!token) return deny('token_invalid', 'malformed');
      const verifying = this.deps.verifier.verify(token);
      const verified = verifying instanceof Promise ? await verifying : verifying;
      // The issuer's keys could not be fetched yet: the token may well be good.
      if (!verified.ok && verified.detail === 'jwks_unavailable') return deny('auth_unavailable', verified.detail);
      if (!verified.ok) return deny('token_invalid', verified.detail);
      identity = verified.identity;
      if (identity.kid !== undefined && this.deps.revokedKids?.has(identity.kid)) return deny('token_revoked', 'kid_revoked', identity);
    } else if (route.auth.mode === 'required') {
      return deny('token_missing', 'no_credentials');
    }

    // Bans and limits key on the same spelling of the address as the admin CLI writes.
    const clientIp = canonicalIp(request.client_ip) ?? request.client_ip;
    // A policy refusal (ACL, then scopes) still checks revocation and bans, and spends no quota.
    const missing = identity ? missingScopes(route, identity.scopes) : [];
    const refusal = !aclAllows(route, identity?.groups ?? []) ? deny('forbidden', 'acl', identity) : missing.length > 0 ? insufficientScope(route, identity) : undefined;
    const policyOk = refusal === undefined;
    const overrides = this.deps.overrides;
    const limits = policyOk
      ? limitWindows(this.deps.config, route, { consumer: identity?.consumer, jti: identity?.jti || undefined, clientIp, headers: request.headers, tier: identity?.tier }, this.deps.keys, overrides && ((consumer) => overrides.of(consumer)))
      : { windows: [], cost: 1, tierUnknown: false };
    // The caller's remaining wait (deadline_ms, when sent), less the time to carry the answer
    // back, bounds the decision timeout: a fail-open answer must arrive while it is still wanted.
    const callerWaitMs = request.deadline_ms > 0 ? Math.max(0, request.deadline_ms - ANSWER_MARGIN_MS) : Infinity;
    const waitMs = Math.min(this.deps.config.sidecar.decision_timeout_ms, callerWaitMs);
    let verdict: StoreVerdict;
    try {
      verdict = await this.deps.decider.run({
        jti: identity?.jti || undefined,
        consumer: identity?.consumer,
        iat: identity?.iat,
        clientIp,
        count: policyOk,
        cost: limits.cost,
        windows: limits.windows,
        giveUpAt: receivedAt + waitMs,
      });
    } catch (err) {
      this.deps.logger.warn('redis unavailable for a decision', { request_id: request.request_id, trace_id: traceIdOf(request), error: (err as Error).message });
      const detail = err instanceof RedisTimeoutError ? 'redis_timeout' : err instanceof RedisBreakerOpenError ? 'redis_breaker_open' : 'redis_unavailable';
      if (refusal) return refusal;
      if (onRedisFailure(route) === 'allow') return allow(identity, undefined, { failOpen: true, detail, anonymous: anonymousOn(route, identity) });
      return deny('auth_unavailable', detail, identity);
    }

    switch (verdict.status) {
      case 'token_revoked':
        return deny('token_revoked', 'jti_revoked', identity);
      case 'consumer_revoked':
        return deny('token_revoked', 'consumer_revoked', identity);
      case 'ip_banned':
        return deny('banned', 'ip', identity);
      case 'consumer_banned':
        return deny('banned', 'consumer', identity);
      case 'rate_limited':
        return deny('rate_limited', 'limit_exceeded', identity, verdict.limit, this.headersOf(route, verdict, limits.windows));
      case 'allowed':
        return (
          refusal ??
          allow(identity, verdict.shadow ?? verdict.limit, {
            detail: limits.tierUnknown ? 'tier_unknown' : undefined,
            anonymous: anonymousOn(route, identity),
            headers: this.headersOf(route, verdict, limits.windows),
            shadow: verdict.shadow !== undefined,
          })
        );
    }
  }

  private headersOf(route: RouteConfig, verdict: StoreVerdict, windows: readonly LimitWindow[]): Record<string, string> {
    return route.rate_limit ? limitHeaders(route.rate_limit.headers, verdict.limit, windows, verdict.remaining) : {};
  }
}

/** 403 naming every scope the route needs, as RFC 6750 §3.1 asks. */
function insufficientScope(route: RouteConfig, identity: TokenIdentity | undefined): CheckResponse {
  const scopes = route.auth.required_scopes.join(' ');
  return deny('forbidden', 'insufficient_scope', identity, undefined, { 'WWW-Authenticate': `Bearer realm="gateway", error="insufficient_scope", scope="${scopes}"` });
}

/** An optional route's caller without a token: the upstream is told it is anonymous. */
function anonymousOn(route: RouteConfig, identity: TokenIdentity | undefined): boolean {
  return identity === undefined && route.auth.mode === 'optional';
}
