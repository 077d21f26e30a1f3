/**
 * `routes`: what a route matches (paths, methods, hosts), how it authenticates, where it sends
 * the request (an upstream or a pool, or `serve`), and its rate limit.
 */
import { z } from 'zod';
import { corsSchema } from './cors-schema.js';
import { cookieName, httpMethod, name, PLAIN_PATH, PLAIN_PATH_ERROR } from './fields.js';
import { BURST_NEEDS_GCRA, burstNeedsGcra, limitBehaviourFields, limitBySchema, windowsSchema } from './limits-schema.js';

/** Which rate-limit headers a route's answers carry (auth-sidecar/service/limit-headers.ts). */
export const LIMIT_HEADER_STYLES = ['ietf', 'kong', 'both', 'none'] as const;

const AUTH_MODES = ['required', 'optional', 'none'] as const;
/** A scope as RFC 6749 §3.3 allows it: printable ASCII without space, quote or backslash. */
const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'must be a scope token (printable ASCII, no space, " or \\)');
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

export const routeSchema = z.strictObject({
  name: name.describe('Route name, used in audit records and rate-limit keys'),
  paths: z
    .array(
      z
        .string()
        .regex(PLAIN_PATH, PLAIN_PATH_ERROR)
        .refine((p) => !/\/\/|\/\.\.?(\/|$)/.test(p), 'must be normalized: no empty, . or .. segments')
        .refine((p) => !p.startsWith('/__gateway'), 'is reserved for the gateway\'s own endpoints (/__gateway/)'),
    )
    .min(1)
    .describe('Path prefixes, matched on segment boundaries of the normalized path'),
  methods: z
    .array(httpMethod)
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
    .regex(PLAIN_PATH, PLAIN_PATH_ERROR)
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
      by: limitBySchema.default(['consumer']),
      ...windowsSchema,
      ...limitBehaviourFields,
      cost: z.number().int().min(1).max(1000).default(1).describe("What one request of this route counts as, in its own windows and in its tier's (e.g. 5)"),
      headers: z
        .enum(LIMIT_HEADER_STYLES)
        .default('ietf')
        .describe('ietf: RateLimit-Limit/-Remaining/-Reset/-Policy for the tightest window; kong: X-RateLimit-Limit-<Window>/X-RateLimit-Remaining-<Window> for every window; both; none (Retry-After on a refusal stays)'),
      status: z.number().int().min(400).max(599).default(429).describe('The status of a refusal by a rate limit'),
      message: z
        .string()
        .regex(/^[\x20-\x7e]{1,200}$/, 'must be 1-200 printable ASCII characters')
        .optional()
        .describe('The `error` text of a refusal by a rate limit (default: rate limit exceeded)'),
      on_redis_failure: z
        .enum(['allow', 'deny'])
        .optional()
        .describe('When Redis cannot answer (down, frozen, breaker open): allow lets requests through unchecked, marked fail_open in the audit; deny answers 503. Default: allow on auth: none routes, deny elsewhere'),
      fail_open: z.boolean().optional().describe('Older spelling: true is on_redis_failure: allow, false is deny'),
    })
    .refine(burstNeedsGcra, BURST_NEEDS_GCRA)
    .refine((limit) => limit.fail_open === undefined || limit.on_redis_failure === undefined || (limit.fail_open ? 'allow' : 'deny') === limit.on_redis_failure, {
      message: 'fail_open and on_redis_failure disagree: give on_redis_failure only',
      path: ['fail_open'],
    })
    .optional(),
  cors: z.union([corsSchema, z.literal(false)]).optional().describe("CORS for this route (replaces the top-level cors), or false for none; unset: the top-level cors"),
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

