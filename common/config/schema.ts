/**
 * The one schema of `GATEWAY_CONFIG`, read by all three processes.
 * Every field carries a description; cross-field rules live in `superRefine` blocks beside
 * the object they constrain, so an error always names the path of the offending key.
 */
import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { anomalySchema } from './anomaly-schema.js';
import { parseCidr } from '../cidr.js';
import { auditSchema } from './audit-schema.js';

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
export const EC_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;
export const OKP_ALGORITHMS = ['EdDSA'] as const;
export const ALGORITHMS = [...HMAC_ALGORITHMS, ...RSA_ALGORITHMS, ...EC_ALGORITHMS, ...OKP_ALGORITHMS] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** Longest token lifetime an issuer may be configured to accept: one year. */
const MAX_LIFETIME_CAP_SECONDS = 366 * 86400;

/** Seconds, or a duration like `15m`, `24h`, `7d`; parsed to seconds. */
const lifetimeSeconds = z
  .union([z.number(), z.string()], { error: 'must be seconds or a duration like 90s, 15m, 24h, 7d' })
  .transform((value, ctx) => {
    const seconds = typeof value === 'number' ? value : parseDuration(value);
    if (seconds === undefined) ctx.addIssue({ code: 'custom', message: 'must be seconds or a duration like 90s, 15m, 24h, 7d' });
    return seconds ?? z.NEVER;
  })
  .pipe(z.number().int().positive().max(MAX_LIFETIME_CAP_SECONDS, 'must be at most 366d'));

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, _ or -');

/** Where one verification key comes from: exactly one of the sources, with an optional `kid`. */
const keySourceFields = {
  secret_env: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
    .optional()
    .describe('Environment variable holding an HMAC secret (HS* algorithms), at least 32 bytes once decoded'),
  secret_encoding: z.enum(['utf8', 'base64']).optional().describe('How the secret is written: utf8 (as is, the default) or base64 / base64url'),
  public_key: z.string().optional().describe('PEM public key, inline (RS*, PS*, ES*, EdDSA)'),
  public_key_file: z.string().optional().describe('Path of a PEM public key file, relative to the config file'),
  jwk: z.record(z.string(), z.unknown()).optional().describe('A public JWK (kty RSA, EC, OKP) or an HMAC one (kty oct)'),
};
export const KEY_SOURCES = ['secret_env', 'public_key', 'public_key_file', 'jwk'] as const;

function oneKeySource(source: Partial<Record<(typeof KEY_SOURCES)[number], unknown>>, ctx: z.RefinementCtx, path: (string | number)[]): void {
  if (KEY_SOURCES.filter((k) => source[k] !== undefined).length !== 1) {
    ctx.addIssue({ code: 'custom', message: `exactly one of ${KEY_SOURCES.join(', ')} is required`, path });
  }
}

function secureOrLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === 'https:' || (protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(hostname));
}

/** How the sidecar keeps an issuer's JWKS (auth-sidecar/jwt/jwks-keys.ts); JWKS_DEFAULTS when not given. */
const jwksSchema = z
  .strictObject({
    timeout_ms: z.number().int().min(100).max(30_000).default(2_000).describe('Longest wait for one fetch'),
    min_ttl_seconds: z.number().int().min(1).max(86_400).default(60).describe("Shortest time keys are kept, whatever the answer's Cache-Control says"),
    max_ttl_seconds: z.number().int().min(1).max(86_400).default(3_600).describe("Longest time keys are kept before a refresh (Cache-Control's max-age within these bounds; 300 s without one)"),
    unknown_kid_interval_seconds: z.number().int().min(1).max(3_600).default(10).describe('At most one fetch per this many seconds for tokens naming a kid the keys do not have'),
    failure_cooldown_seconds: z.number().int().min(1).max(3_600).default(30).describe('After a failed fetch, the last good keys serve and the next try waits this long'),
  })
  .refine((j) => j.min_ttl_seconds <= j.max_ttl_seconds, { message: 'min_ttl_seconds must not exceed max_ttl_seconds', path: ['min_ttl_seconds'] });
export type JwksConfig = z.output<typeof jwksSchema>;
export const JWKS_DEFAULTS: JwksConfig = jwksSchema.parse({});

/** Most keys one issuer may list: a token without `kid` is tried against at most MAX_KEYS_TRIED of them. */
export const MAX_ISSUER_KEYS = 16;

const keySchema = z
  .strictObject({
    kid: z.string().min(1).max(256).optional().describe('Key id: a token whose header names this kid is checked against this key only'),
    ...keySourceFields,
  })
  .superRefine((key, ctx) => oneKeySource(key, ctx, []));

export const issuerSchema = z
  .strictObject({
    name: name.describe('Name used in logs, audit records and consumer ids (<issuer>:<sub>)'),
    iss: z.string().min(1).describe('Exact value required in the token `iss` claim'),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('Accepted `aud` values; when set, a token must carry one of them'),
    algorithms: z.array(z.enum(ALGORITHMS)).min(1).describe('Explicit allow-list of signing algorithms'),
    ...keySourceFields,
    keys: z.array(keySchema).min(1).max(MAX_ISSUER_KEYS).optional().describe('Several keys, each with its own source and kid (instead of one key source on the issuer)'),
    jwks_url: z
      .url()
      .refine(secureOrLoopback, 'must be https:// (http:// only to 127.0.0.1, ::1 or localhost)')
      .optional()
      .describe("The issuer's JWKS (instead of static keys): fetched, cached and refreshed by the sidecar"),
    jwks: jwksSchema.optional().describe('Fetch timeout, cache bounds, unknown-kid and failure intervals of jwks_url (defaults: 2000 ms, 60-3600 s, 10 s, 30 s)'),
    clock_skew_seconds: z.number().int().min(0).max(300).default(30).describe('Tolerance on exp, nbf and iat'),
    max_lifetime: lifetimeSeconds
      .default(86400)
      .describe('Longest accepted token lifetime, exp - iat (without iat: exp - now, less the clock skew), as seconds or 15m, 24h, 7d; parsed to seconds'),
    groups_claim: z.string().min(1).default('groups').describe('Claim holding the ACL groups (array or space-separated string)'),
    tier_claim: z.string().min(1).default('tier').describe('Claim naming the rate-limit tier'),
    scopes_claim: z.string().min(1).default('scope').describe('Claim holding the scopes (space-separated string, as RFC 9068 `scope`, or a list, as `scp`)'),
  })
  .superRefine((issuer, ctx) => {
    const onIssuer = KEY_SOURCES.filter((k) => issuer[k] !== undefined);
    if (issuer.jwks_url !== undefined) {
      const others = [...onIssuer, ...(issuer.keys ? ['keys'] : [])];
      if (others.length > 0) ctx.addIssue({ code: 'custom', message: `jwks_url replaces ${others.join(', ')}: give one or the other`, path: ['jwks_url'] });
      issuer.algorithms.forEach((alg, i) => {
        if ((HMAC_ALGORITHMS as readonly string[]).includes(alg)) ctx.addIssue({ code: 'custom', message: `${alg} needs a secret, which a JWKS may not publish`, path: ['algorithms', i] });
      });
      return;
    }
    if (issuer.keys !== undefined) {
      if (onIssuer.length > 0) ctx.addIssue({ code: 'custom', message: `keys replaces ${onIssuer.join(', ')}: give one or the other`, path: ['keys'] });
      // Keys without a kid get a placeholder no kid can equal, so indexes stay those of `keys`.
      unique(issuer.keys.map((k, i) => k.kid ?? `\0${i}`), ['keys'], 'kid', ctx);
      return;
    }
    oneKeySource(issuer, ctx, []);
    if (onIssuer.length !== 1) return;
    // One key of a known kind: say at once which algorithms it cannot serve (the loader checks every key's fit).
    const hmac = issuer.secret_env !== undefined;
    if (issuer.jwk !== undefined) return;
    issuer.algorithms.forEach((alg, i) => {
      const isHmac = (HMAC_ALGORITHMS as readonly string[]).includes(alg);
      if (isHmac !== hmac) {
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms', i],
          message: hmac ? `${alg} needs a public key, not secret_env` : `${alg} needs secret_env, not a public key`,
        });
      }
    });
  });

export type KeySourceConfig = z.output<typeof keySchema>;

export const windowsSchema = {
  second: z.number().int().positive().optional().describe('Requests allowed per second'),
  minute: z.number().int().positive().optional().describe('Requests allowed per minute'),
  hour: z.number().int().positive().optional().describe('Requests allowed per hour'),
  day: z.number().int().positive().optional().describe('Requests allowed per day'),
};
export const WINDOW_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
export type WindowName = keyof typeof WINDOW_SECONDS;

const tierSchema = z.strictObject(windowsSchema).refine((t) => Object.values(t).some((v) => v !== undefined), {
  message: 'a tier needs at least one of second, minute, hour, day',
});

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
  upstream: z.url({ protocol: /^https?$/ }).describe('Base URL requests are proxied to'),
  auth: authSchema,
  acl: z
    .strictObject({ allow: z.array(z.string().min(1)).min(1).describe('Groups admitted to the route') })
    .optional(),
  rate_limit: z
    .strictObject({
      by: rateLimitBy.default('consumer').describe('Counter subject; consumer falls back to ip when anonymous'),
      ...windowsSchema,
      fail_open: z.boolean().default(false).describe('Let requests through (marked in the audit) when Redis is down'),
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
});

export const configSchema = z
  .strictObject({
    issuers: z.array(issuerSchema).default([]),
    tiers: z.record(name, tierSchema).default({}),
    default_tiers: z
      .strictObject({
        authenticated: name
          .optional()
          .describe('Tier of a token without a tier claim, or whose claim names no configured tier; unset: `free` when tiers has it, else no tier limit'),
        anonymous: name.optional().describe('Tier of a request without a token; unset: `anonymous` when tiers has it, else no tier limit'),
      })
      .prefault({}),
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
    unique(config.issuers.map((i) => i.name), ['issuers'], 'name', ctx);
    unique(config.issuers.map((i) => i.iss), ['issuers'], 'iss', ctx);
    unique(config.routes.map((r) => r.name), ['routes'], 'name', ctx);
    const seen = new Map<string, string>();
    config.routes.forEach((route, i) =>
      route.paths.forEach((p, j) => {
        const prefix = p.length > 1 ? p.replace(/\/+$/, '') : p;
        const owner = seen.get(prefix);
        if (owner) ctx.addIssue({ code: 'custom', path: ['routes', i, 'paths', j], message: `path ${p} is already served by route ${owner}` });
        seen.set(prefix, route.name);
      }),
    );
  })
  .transform((config) => ({
    ...config,
    default_tiers: {
      authenticated: config.default_tiers.authenticated ?? implicitTier(config.tiers, 'free'),
      anonymous: config.default_tiers.anonymous ?? implicitTier(config.tiers, 'anonymous'),
    },
  }));

/** An unset default tier is the tier of that conventional name when the config defines it. */
function implicitTier(tiers: Record<string, unknown>, conventional: string): string | undefined {
  return Object.hasOwn(tiers, conventional) ? conventional : undefined;
}

function unique(values: string[], path: (string | number)[], key: string, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [...path, i, key], message: `duplicate ${key} "${v}"` });
    seen.add(v);
  });
}

export type GatewayConfig = z.output<typeof configSchema>;

/** The request header a route's limits are keyed on (`by: header:<name>`), lower-case; else undefined. */
export function rateLimitKeyHeader(route: { rate_limit?: { by: string } | undefined }): string | undefined {
  const by = route.rate_limit?.by;
  return by?.startsWith('header:') ? by.slice('header:'.length) : undefined;
}
export type IssuerConfig = GatewayConfig['issuers'][number];
export type RouteConfig = GatewayConfig['routes'][number];
export type TierConfig = GatewayConfig['tiers'][string];
