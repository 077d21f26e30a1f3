/**
 * The one schema of `GATEWAY_CONFIG`, read by all three processes.
 * Every field carries a description; cross-field rules live in `superRefine` blocks beside
 * the object they constrain, so an error always names the path of the offending key.
 */
import { z } from 'zod';
import { anomalySchema } from './anomaly-schema.js';
import { parseCidr } from '../cidr.js';
import { auditSchema } from './audit-schema.js';
import { name, unique } from './fields.js';
import { issuerSchema } from './issuer-schema.js';
import { tokenIssuingSchema } from './token-issuing-schema.js';
import { isUpstreamUrl, upstreamSchema } from './upstream-schema.js';

export * from './issuer-schema.js';
export * from './token-issuing-schema.js';
export * from './upstream-schema.js';

export const windowsSchema = {
  second: z.number().int().positive().optional().describe('Requests allowed per second'),
  minute: z.number().int().positive().optional().describe('Requests allowed per minute'),
  hour: z.number().int().positive().optional().describe('Requests allowed per hour'),
  day: z.number().int().positive().optional().describe('Requests allowed per day'),
};
export const WINDOW_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
export type WindowName = keyof typeof WINDOW_SECONDS;

export const LIMIT_ALGORITHMS = ['fixed', 'sliding', 'gcra'] as const;
export type LimitAlgorithm = (typeof LIMIT_ALGORITHMS)[number];

/** How a tier's or a route's windows count (auth-sidecar/limiter/decide.lua). */
const algorithmFields = {
  algorithm: z
    .enum(LIMIT_ALGORITHMS)
    .default('fixed')
    .describe('fixed: aligned windows (O(1), up to 2x at an edge); sliding: exact over any span (a log, memory ~ limit per key); gcra: evenly spaced with a burst (O(1))'),
  burst: z.number().int().min(1).max(1_000_000_000).optional().describe('gcra: requests that may come at once (default: the whole limit of the window)'),
};

const WINDOW_NAMES = Object.keys(WINDOW_SECONDS) as WindowName[];

const tierSchema = z
  .strictObject({ ...windowsSchema, ...algorithmFields })
  .refine((t) => WINDOW_NAMES.some((w) => t[w] !== undefined), { message: 'a tier needs at least one of second, minute, hour, day' })
  .refine((t) => t.burst === undefined || t.algorithm === 'gcra', { message: 'burst is for algorithm: gcra', path: ['burst'] });

const rateLimitBy = z
  .string()
  .regex(/^(consumer|ip|header:[A-Za-z0-9-]+)$/, 'must be consumer, ip or header:<name>')
  .transform((by) => by.toLowerCase() as 'consumer' | 'ip' | `header:${string}`);

const AUTH_MODES = ['required', 'optional', 'none'] as const;
/** A scope as RFC 6749 §3.3 allows it: printable ASCII without space, quote or backslash. */
const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'must be a scope token (printable ASCII, no space, " or \\)');
const cookieName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/, 'must be a cookie name (an RFC 6265 token)');
const queryName = z.string().regex(/^[A-Za-z0-9._~-]{1,64}$/, 'must be a query parameter name of unreserved characters');

/**
 * A route's authentication: `required`, `optional` or `none`, or the same as `mode` with the
 * scopes a token must carry and where else a token may be read. Parsed to the object form.
 */
const AUTH_ERROR = 'must be required, optional, none, or { mode, required_scopes, token: { cookie, query } }';
const authSchema = z
  .union([
    z.enum(AUTH_MODES).transform((mode) => ({ mode, required_scopes: [] as string[], token: {} as { cookie?: string; query?: string } })),
    z.strictObject({
      mode: z.enum(AUTH_MODES).default('required').describe('Whether a valid token is needed'),
      required_scopes: z.array(scope).max(32).default([]).describe('Scopes a token must all carry (403 forbidden, insufficient_scope, otherwise)'),
      token: z
        .strictObject({
          cookie: cookieName.optional().describe('Read the token from this cookie when there is no Authorization header'),
          query: queryName.optional().describe('Read the token from this query parameter when there is neither (off by default; always stripped before proxying)'),
        })
        .default({})
        .describe('Where else the token may be read; Authorization: Bearer always comes first'),
    }),
  ], { error: AUTH_ERROR })
  .prefault('required')
  .superRefine((auth, ctx) => {
    if (auth.mode !== 'required' && auth.required_scopes.length > 0) ctx.addIssue({ code: 'custom', message: 'required_scopes needs mode required', path: ['required_scopes'] });
    if (auth.mode === 'none' && (auth.token.cookie !== undefined || auth.token.query !== undefined)) ctx.addIssue({ code: 'custom', message: 'a route without authentication reads no token', path: ['token'] });
  })
  .describe('Whether a valid token is needed (required, optional, none), or { mode, required_scopes, token: { cookie, query } }');

/** A route's host: a DNS name, or `*.` and one (any subdomain of it). */
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

/** What a route may serve instead of proxying to an upstream. */
export const ROUTE_SERVES = ['token_endpoints'] as const;

const routeSchema = z.strictObject({
  name: name.describe('Route name, used in audit records and rate-limit keys'),
  paths: z
    .array(
      z
        .string()
        .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must start with / and hold only unreserved characters')
        .refine((p) => !/\/\/|\/\.\.?(\/|$)/.test(p), 'must be normalized: no empty, . or .. segments')
        .refine((p) => !p.startsWith('/__gateway'), 'is reserved for the gateway\'s own endpoints (/__gateway/)'),
    )
    .min(1)
    .describe('Path prefixes, matched on segment boundaries of the normalized path'),
  methods: z
    .array(z.string().regex(/^[A-Z][A-Z-]{0,19}$/, 'must be an upper-case HTTP method, e.g. GET'))
    .min(1)
    .optional()
    .describe('Methods the route admits (unset: all); a request of another method falls to the next route, or 405 with Allow'),
  hosts: z
    .array(z.string().regex(HOST_PATTERN, 'must be a host name or *.<domain>, without a port').transform((h) => h.toLowerCase()))
    .min(1)
    .optional()
    .describe('Host header names the route serves (exact, or *.example.com for any subdomain); unset: any host, below routes naming it'),
  strip_path: z.boolean().default(false).describe('Remove the matched path prefix before proxying (/search/x -> /x)'),
  rewrite: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must start with / and hold only unreserved characters')
    .optional()
    .describe('Replace the matched path prefix with this one before proxying (/search/x with rewrite /v2/find -> /v2/find/x)'),
  preserve_host: z.boolean().default(false).describe("Send the client's Host to the upstream (default: the upstream's own host)"),
  websocket: z
    .boolean()
    .default(false)
    .describe('Admit WebSocket upgrades: checked like any request, then piped both ways, closed with 1008 when the token is revoked or the client banned'),
  upstream: z
    .string()
    .min(1)
    .optional()
    .describe('Base URL requests are proxied to (http:// or https://), or the name of an entry of `upstreams` (a pool of targets); or `serve`'),
  serve: z
    .enum(ROUTE_SERVES)
    .optional()
    .describe('Answered by the gateway instead of proxied: token_endpoints are /auth/login, /auth/refresh, /auth/logout and /.well-known/jwks.json (needs token_issuing)'),
  auth: authSchema,
  acl: z
    .strictObject({ allow: z.array(z.string().min(1)).min(1).describe('Groups admitted to the route') })
    .optional(),
  rate_limit: z
    .strictObject({
      by: rateLimitBy.default('consumer').describe('Counter subject; consumer falls back to ip when anonymous'),
      ...windowsSchema,
      ...algorithmFields,
      on_redis_failure: z
        .enum(['allow', 'deny'])
        .optional()
        .describe('When Redis cannot answer (down, frozen, breaker open): allow lets requests through unchecked, marked fail_open in the audit; deny answers 503. Default: allow on auth: none routes, deny elsewhere'),
      fail_open: z.boolean().optional().describe('Older spelling: true is on_redis_failure: allow, false is deny'),
    })
    .refine((limit) => limit.burst === undefined || limit.algorithm === 'gcra', { message: 'burst is for algorithm: gcra', path: ['burst'] })
    .refine((limit) => limit.fail_open === undefined || limit.on_redis_failure === undefined || (limit.fail_open ? 'allow' : 'deny') === limit.on_redis_failure, {
      message: 'fail_open and on_redis_failure disagree: give on_redis_failure only',
      path: ['fail_open'],
    })
    .optional(),
  upstream_timeout_ms: z.number().int().positive().max(600_000).default(30_000),
  allow_encoded_slashes: z
    .boolean()
    .default(false)
    .describe('Forward paths holding %2F or %5C unchanged (refused with 400 by default: an upstream that decodes them before resolving dot segments may serve another route)'),
  allow_underscore_headers: z
    .boolean()
    .default(false)
    .describe('Forward request headers with "_" in their name (dropped by default; spellings of gateway-owned headers are always dropped)'),
  max_body_bytes: z
    .number()
    .int()
    .min(0)
    .max(1024 ** 3)
    .default(1024 * 1024)
    .describe('Largest request body proxied (413 payload_too_large beyond it); 0 refuses any request with a body'),
}).superRefine((route, ctx) => {
  if (route.strip_path && route.rewrite !== undefined) ctx.addIssue({ code: 'custom', message: 'give strip_path or rewrite, not both (rewrite replaces the prefix already)', path: ['rewrite'] });
  if ((route.upstream === undefined) === (route.serve === undefined)) ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of upstream, serve', path: ['upstream'] });
  if (route.serve !== undefined && route.auth.mode !== 'none') {
    ctx.addIssue({ code: 'custom', message: 'the token endpoints check credentials themselves: say auth: none', path: ['auth'] });
  }
});

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
      })
      .prefault({}),
    anomaly: anomalySchema.describe("The audit worker's anomaly rules, allow-list and bans (README: Anomaly alerts)"),
    audit: auditSchema.describe("The audit worker's store: retention (README: Audit store)"),
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
    unique(config.issuers.map((i) => i.name), ['issuers'], 'name', ctx);
    unique(config.issuers.map((i) => i.iss), ['issuers'], 'iss', ctx);
    unique(config.routes.map((r) => r.name), ['routes'], 'name', ctx);
    unique(config.upstreams.map((u) => u.name), ['upstreams'], 'name', ctx);
    config.routes.forEach((route, i) => {
      if (route.upstream === undefined || isUpstreamUrl(route.upstream) || config.upstreams.some((u) => u.name === route.upstream)) return;
      ctx.addIssue({ code: 'custom', path: ['routes', i, 'upstream'], message: route.upstream.includes('://') ? 'must be an http:// or https:// URL' : `names no entry of upstreams (${config.upstreams.map((u) => u.name).join(', ') || 'none defined'})` });
    });
    overlappingRoutes(config.routes, ctx);
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
export function rateLimitKeyHeader(route: { rate_limit?: { by: string } | undefined }): string | undefined {
  const by = route.rate_limit?.by;
  return by?.startsWith('header:') ? by.slice('header:'.length) : undefined;
}
export type IssuerConfig = GatewayConfig['issuers'][number];
import type { TokenIssuingConfig } from './token-issuing-schema.js';
export type RouteConfig = GatewayConfig['routes'][number];
export type TierConfig = GatewayConfig['tiers'][string];
