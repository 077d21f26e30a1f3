/**
 * The one schema of `GATEWAY_CONFIG`, read by all three processes.
 * Every field carries a description; cross-field rules live in `superRefine` blocks beside
 * the object they constrain, so an error always names the path of the offending key.
 */
import { z } from 'zod';
import { anomalySchema } from './anomaly-schema.js';
import { corsSchema } from './cors-schema.js';
import { parseCidr } from '../cidr.js';
import { auditSchema } from './audit-schema.js';
import { name, unique } from './fields.js';
import { issuerSchema } from './issuer-schema.js';
import { limitOverrideSchema, tierSchema, WINDOW_NAMES } from './limits-schema.js';
import { routeSchema } from './route-schema.js';
import { gatewayTlsSchema, sidecarClientTlsSchema, sidecarTlsSchema } from './tls-schema.js';
import { tokenIssuingSchema } from './token-issuing-schema.js';
import { tracingSchema } from './tracing-schema.js';
import { isUpstreamUrl, upstreamSchema } from './upstream-schema.js';

export * from './cors-schema.js';
export * from './issuer-schema.js';
export * from './limits-schema.js';
export * from './route-schema.js';
export * from './tls-schema.js';
export * from './token-issuing-schema.js';
export * from './tracing-schema.js';
export * from './upstream-schema.js';

export const configSchema = z
  .strictObject({
    issuers: z.array(issuerSchema).default([]),
    token_issuing: tokenIssuingSchema.optional().describe("The sidecar's own tokens: login, refresh, signing keys (README: Token issuing); needs an issuer with sidecar_keys: true"),
    tiers: z.record(name, tierSchema).default({}),
    default_tiers: z
      .strictObject({
        authenticated: name
          .optional()
          .describe('Tier of a token without a tier claim, or whose claim names no configured tier; unset: `free` when tiers has it, else no tier limit'),
        anonymous: name.optional().describe('Tier of a request without a token; unset: `anonymous` when tiers has it, else no tier limit'),
      })
      .prefault({}),
    limit_overrides: z
      .record(z.string().min(3).max(640), limitOverrideSchema)
      .default({})
      .describe("Consumers (<issuer>:<sub>) with limits of their own in place of their tier's, e.g. { scale: 10 }; `admin limits set` overrides these (README: Rate limiting)"),
    cors: corsSchema.optional().describe('CORS for every route that does not say otherwise (README: CORS)'),
    upstreams: z.array(upstreamSchema).default([]).describe('Pools of targets a route may name as its upstream (README: Upstream pools)'),
    routes: z.array(routeSchema).min(1),
    gateway: z
      .strictObject({
        check_deadline_ms: z.number().int().positive().max(10_000).default(200),
        audit_batch_size: z.number().int().min(1).max(5_000).default(200),
        audit_flush_ms: z.number().int().min(1).max(10_000).default(50),
        audit_spool_max_mb: z.number().int().min(1).max(100_000).default(256),
        headers_timeout_ms: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(10_000)
          .describe('How long a client may take to send the request line and headers (slowloris bound)'),
        request_timeout_ms: z
          .number()
          .int()
          .min(100)
          .max(3_600_000)
          .default(60_000)
          .describe('How long a client may take to send the whole request, body included; at least headers_timeout_ms'),
        keep_alive_timeout_ms: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(15_000)
          .describe("How long an idle keep-alive connection is kept; above a balancer's own idle timeout when one is in front"),
        connections_check_ms: z
          .number()
          .int()
          .min(50)
          .max(60_000)
          .default(1_000)
          .describe('How often the headers and request timeouts are checked'),
        allowed_hosts: z
          .array(z.string().regex(/^([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$/i, 'must be a host name or [ipv6], with an optional :port'))
          .default([])
          .describe('Host header values served (a name without a port matches it on any port); empty: any (421 misdirected_request otherwise)'),
        trusted_proxies: z
          .union([z.array(z.string()), z.string().transform((text) => text.split(',').map((s) => s.trim()).filter((s) => s !== ''))])
          .pipe(z.array(z.string().refine((cidr) => parseCidr(cidr) !== undefined, 'must be an address or a CIDR range, e.g. 10.0.0.0/8')))
          .default([])
          .describe('Peers (addresses or CIDR ranges; a list, or one comma-separated string) whose forwarding header names the client: a balancer in front. Empty: the client is the TCP peer'),
        forwarded_header: z
          .enum(['x-forwarded-for', 'forwarded'])
          .default('x-forwarded-for')
          .describe('The header the trusted proxies set (only that one is read): X-Forwarded-For, or RFC 7239 Forwarded'),
        tls: gatewayTlsSchema.optional().describe('HTTPS on GATEWAY_HTTPS_PORT (README: TLS)'),
        sidecar_tls: sidecarClientTlsSchema.optional().describe('TLS (mTLS with a client certificate) to the sidecars; needs sidecar.tls'),
      })
      .refine((g) => g.request_timeout_ms >= g.headers_timeout_ms, { message: 'request_timeout_ms must be at least headers_timeout_ms', path: ['request_timeout_ms'] })
      .prefault({}),
    sidecar: z
      .strictObject({
        decision_timeout_ms: z
          .number()
          .int()
          .positive()
          .default(100)
          .describe("How long a decision waits for Redis before taking the route's fail-open or fail-closed path; shorter than gateway.check_deadline_ms"),
        redis_breaker: z
          .strictObject({
            failures: z.number().int().min(1).max(1000).default(5).describe('Decisions timed out in a row that open the breaker'),
            open_ms: z.number().int().min(100).max(60_000).default(2_000).describe('How long it stays open (decisions answered at once by on_redis_failure) before one probe is sent'),
          })
          .prefault({})
          .describe('The circuit breaker on Redis decisions: a frozen Redis costs a request milliseconds, not decision_timeout_ms'),
        tls: sidecarTlsSchema.optional().describe("The sidecar's gRPC port over TLS; with client_ca_file, mutual TLS (README: TLS)"),
      })
      .prefault({}),
    anomaly: anomalySchema.describe("The audit worker's anomaly rules, allow-list and bans (README: Anomaly alerts)"),
    audit: auditSchema.describe("The audit worker's store: retention (README: Audit store)"),
    tracing: tracingSchema.describe('W3C traceparent sampling and the optional OpenTelemetry export (README: Tracing)'),
  })
  .superRefine((config, ctx) => {
    for (const kind of ['authenticated', 'anonymous'] as const) {
      const tier = config.default_tiers[kind];
      if (tier !== undefined && !Object.hasOwn(config.tiers, tier)) {
        ctx.addIssue({ code: 'custom', path: ['default_tiers', kind], message: `tier "${tier}" is not defined in tiers` });
      }
    }
    if (config.sidecar.decision_timeout_ms >= config.gateway.check_deadline_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['sidecar', 'decision_timeout_ms'],
        message: `must be shorter than gateway.check_deadline_ms (${config.gateway.check_deadline_ms}), so the sidecar answers before the gateway gives up`,
      });
    }
    tokenIssuingProblems(config, ctx);
    if ((config.sidecar.tls === undefined) !== (config.gateway.sidecar_tls === undefined)) {
      ctx.addIssue({ code: 'custom', path: config.sidecar.tls ? ['gateway', 'sidecar_tls'] : ['sidecar', 'tls'], message: 'the gateway and the sidecar speak TLS together: give sidecar.tls and gateway.sidecar_tls both, or neither' });
    } else if (config.sidecar.tls?.client_ca_file !== undefined && config.gateway.sidecar_tls?.cert_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['gateway', 'sidecar_tls', 'cert_file'], message: 'sidecar.tls.client_ca_file asks for mutual TLS: the gateway needs cert_file and key_file' });
    }
    unique(config.issuers.map((i) => i.name), ['issuers'], 'name', ctx);
    unique(config.issuers.map((i) => i.iss), ['issuers'], 'iss', ctx);
    unique(config.routes.map((r) => r.name), ['routes'], 'name', ctx);
    unique(config.upstreams.map((u) => u.name), ['upstreams'], 'name', ctx);
    config.routes.forEach((route, i) => {
      if (route.upstream === undefined || isUpstreamUrl(route.upstream) || config.upstreams.some((u) => u.name === route.upstream)) return;
      ctx.addIssue({ code: 'custom', path: ['routes', i, 'upstream'], message: route.upstream.includes('://') ? 'must be an http:// or https:// URL' : `names no entry of upstreams (${config.upstreams.map((u) => u.name).join(', ') || 'none defined'})` });
    });
    overlappingRoutes(config.routes, ctx);
    limitProblems(config, ctx);
  })
  .transform((config) => ({
    ...config,
    default_tiers: {
      authenticated: config.default_tiers.authenticated ?? implicitTier(config.tiers, 'free'),
      anonymous: config.default_tiers.anonymous ?? implicitTier(config.tiers, 'anonymous'),
    },
  }));

/**
 * Two routes may share a path only when their hosts differ, or their methods do not overlap:
 * otherwise which one serves a request would be a matter of order.
 */
function overlappingRoutes(routes: readonly { name: string; paths: readonly string[]; hosts?: readonly string[] | undefined; methods?: readonly string[] | undefined }[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, { name: string; methods: readonly string[] | undefined }[]>();
  routes.forEach((route, i) =>
    route.paths.forEach((p, j) => {
      const prefix = p.length > 1 ? p.replace(/\/+$/, '') : p;
      const key = `${[...(route.hosts ?? [])].sort().join(',')} ${prefix}`;
      const owners = seen.get(key) ?? [];
      const owner = owners.find((o) => o.methods === undefined || route.methods === undefined || o.methods.some((m) => route.methods!.includes(m)));
      if (owner) ctx.addIssue({ code: 'custom', path: ['routes', i, 'paths', j], message: `path ${p} is already served by route ${owner.name}${route.hosts ? ' for the same hosts' : ''}${route.methods ? ' for one of these methods' : ''}` });
      owners.push({ name: route.name, methods: route.methods });
      seen.set(key, owners);
    }),
  );
}

/** Overrides name configured issuers; a route's cost fits in each of its own windows (else no request could ever pass). */
function limitProblems(config: { issuers: readonly IssuerConfig[]; limit_overrides: Record<string, unknown>; routes: readonly RouteConfig[] }, ctx: z.RefinementCtx): void {
  for (const consumer of Object.keys(config.limit_overrides)) {
    const issuer = consumer.slice(0, consumer.indexOf(':'));
    if (!config.issuers.some((i) => i.name === issuer) || consumer.endsWith(':')) {
      ctx.addIssue({ code: 'custom', path: ['limit_overrides', consumer], message: 'must be <issuer>:<sub> with a configured issuer' });
    }
  }
  config.routes.forEach((route, i) => {
    const limit = route.rate_limit;
    // Cost 1 fits any window; a window that is itself invalid has its own error.
    if (!limit || limit.cost <= 1) return;
    const window = WINDOW_NAMES.find((w) => limit[w] !== undefined && limit[w] > 0 && limit[w] < limit.cost);
    if (window) ctx.addIssue({ code: 'custom', path: ['routes', i, 'rate_limit', 'cost'], message: `${limit.cost} exceeds the route's ${window} limit (${limit[window]}): no request could ever pass` });
  });
}

/** token_issuing and its issuer (the one with sidecar_keys) come together and agree; token endpoints need them. */
function tokenIssuingProblems(config: { issuers: readonly IssuerConfig[]; token_issuing?: TokenIssuingConfig | undefined; routes: readonly { serve?: string | undefined }[] }, ctx: z.RefinementCtx): void {
  const own = config.issuers.flatMap((issuer, i) => (issuer.sidecar_keys ? [{ issuer, i }] : []));
  own.slice(1).forEach(({ i }) => ctx.addIssue({ code: 'custom', path: ['issuers', i, 'sidecar_keys'], message: 'only one issuer may be the sidecar\'s own' }));
  const issuing = config.token_issuing;
  const first = own[0];
  if (!issuing) {
    if (first) ctx.addIssue({ code: 'custom', path: ['issuers', first.i, 'sidecar_keys'], message: 'needs a token_issuing section' });
    config.routes.forEach((route, i) => {
      if (route.serve === 'token_endpoints') ctx.addIssue({ code: 'custom', path: ['routes', i, 'serve'], message: 'token_endpoints needs a token_issuing section' });
    });
    return;
  }
  if (!first) return void ctx.addIssue({ code: 'custom', path: ['token_issuing'], message: 'needs an issuer with sidecar_keys: true (the issuer of the tokens it signs)' });
  if (!(first.issuer.algorithms as readonly string[]).includes(issuing.algorithm)) {
    ctx.addIssue({ code: 'custom', path: ['token_issuing', 'algorithm'], message: `is not among issuer ${first.issuer.name}'s algorithms` });
  }
  if (issuing.access_token_ttl > first.issuer.max_lifetime) {
    ctx.addIssue({ code: 'custom', path: ['token_issuing', 'access_token_ttl'], message: `exceeds issuer ${first.issuer.name}'s max_lifetime (${first.issuer.max_lifetime} s)` });
  }
}

/** The sidecar's own issuer (sidecar_keys: true) with its token_issuing settings; undefined when it issues no tokens. */
export function ownIssuerOf(config: GatewayConfig): { issuer: IssuerConfig; issuing: TokenIssuingConfig } | undefined {
  const issuer = config.issuers.find((i) => i.sidecar_keys);
  return issuer && config.token_issuing ? { issuer, issuing: config.token_issuing } : undefined;
}

/** An unset default tier is the tier of that conventional name when the config defines it. */
function implicitTier(tiers: Record<string, unknown>, conventional: string): string | undefined {
  return Object.hasOwn(tiers, conventional) ? conventional : undefined;
}

export type GatewayConfig = z.output<typeof configSchema>;

/**
 * What a route does when Redis cannot decide: its limit's on_redis_failure (or the older
 * fail_open); else allow on routes without authentication (bans and limits go unchecked, the
 * front door stays open) and deny (503) on routes that read tokens, whose revocation checks
 * must not be skipped unless the route says so.
 */
export function onRedisFailure(route: Pick<RouteConfig, 'rate_limit' | 'auth'>): 'allow' | 'deny' {
  const limit = route.rate_limit;
  if (limit?.on_redis_failure !== undefined) return limit.on_redis_failure;
  if (limit?.fail_open !== undefined) return limit.fail_open ? 'allow' : 'deny';
  return route.auth.mode === 'none' ? 'allow' : 'deny';
}

/** The request header a route's limits are keyed on (`by: header:<name>`), lower-case; else undefined. */
export function rateLimitKeyHeader(route: { rate_limit?: { by: readonly string[] } | undefined }): string | undefined {
  const header = route.rate_limit?.by.find((part) => part.startsWith('header:'));
  return header?.slice('header:'.length);
}
export type IssuerConfig = GatewayConfig['issuers'][number];
import type { TokenIssuingConfig } from './token-issuing-schema.js';
export type RouteConfig = GatewayConfig['routes'][number];
export type TierConfig = GatewayConfig['tiers'][string];
