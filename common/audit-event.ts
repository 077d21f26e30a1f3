/**
 * The audit event: one per request that reached the gateway, allowed or denied.
 * Credentials (tokens, cookies, Authorization) are never part of it.
 */
import { z } from 'zod';
import { WINDOW_NAMES } from './config/limits-schema.js';
import { TRACE_ID } from './tracing/trace-context.js';

/**
 * The longest value of each bounded text field, in characters (Unicode code points, as zod
 * counts them). One table: the schema below refuses longer values, and the gateway cuts every
 * value to it before publishing (gateway/audit/field-limits.ts), naming the cut fields in
 * `truncated`, so a long path or user agent never costs the event.
 */
export const AUDIT_TEXT_LIMITS = {
  request_id: 128,
  gateway_id: 128,
  route: 128,
  method: 32,
  path: 4096,
  reason: 64,
  detail: 64,
  sub: 512,
  consumer: 640,
  jti: 512,
  client_ip: 64,
  user_agent: 512,
  upstream_target: 512,
  'rate_limit.limit': 200,
} as const;

/** A field the gateway may cut: a key of AUDIT_TEXT_LIMITS (`rate_limit.limit` is the nested one). */
export type TruncatableField = keyof typeof AUDIT_TEXT_LIMITS;
export const TRUNCATABLE_FIELDS = Object.keys(AUDIT_TEXT_LIMITS) as [TruncatableField, ...TruncatableField[]];

const text = (field: TruncatableField) => z.string().max(AUDIT_TEXT_LIMITS[field]);

export const rateLimitStateSchema = z.strictObject({
  limit: text('rate_limit.limit').describe('Which limit decided (or, with shadow, would have refused), e.g. tier:free:minute or route:payments:second'),
  /** Its window; null in events of older gateways. */
  window: z.enum(WINDOW_NAMES).nullable().default(null),
  max: z.number().int().min(0),
  remaining: z.number().int().min(0),
  reset_s: z.number().int().min(0),
});

export const auditEventSchema = z.strictObject({
  event_id: z.uuid(),
  ts: z.iso.datetime({ offset: true }),
  request_id: text('request_id'),
  gateway_id: text('gateway_id'),
  route: text('route').nullable(),
  method: text('method'),
  path: text('path'),
  status: z.number().int().min(0).max(999),
  decision: z.enum(['allow', 'deny']),
  reason: text('reason').nullable(),
  detail: text('detail').nullable(),
  sub: text('sub').nullable(),
  consumer: text('consumer').nullable(),
  jti: text('jti').nullable(),
  /** When the token was issued (its iat); null without a token or iat, and in events of older gateways. */
  token_iat: z.iso.datetime({ offset: true }).nullable().default(null),
  client_ip: text('client_ip'),
  user_agent: text('user_agent').nullable(),
  latency_ms: z.number().min(0),
  upstream_status: z.number().int().min(0).max(999).nullable(),
  bytes_out: z.number().int().min(0),
  /** The pool target that served (or last failed) the request, as its URL; null when none was tried (and in events of older gateways). */
  upstream_target: text('upstream_target').nullable().default(null),
  /** Targets tried: 0 when the request was not proxied, 2 when a failed connect was retried on another. */
  upstream_tries: z.number().int().min(0).max(10).default(0),
  /** Bytes the client sent through a WebSocket (its event is written at close); null for other requests. */
  bytes_in: z.number().int().min(0).nullable().default(null),
  rate_limit: rateLimitStateSchema.nullable(),
  fail_open: z.boolean(),
  /** Allowed, but the shadow limit rate_limit names would have refused it. */
  shadow: z.boolean(),
  /** The W3C trace the request belongs to (README: Tracing): the client's traceparent when valid, else one the gateway started; null in events of older gateways and of requests refused before they were parsed. */
  trace_id: z.string().regex(TRACE_ID, 'must be 32 lower-case hex characters').nullable().default(null),
  /** The hash of the config the gateway served the request under (`/readyz` config_hash); null in events of older gateways. */
  config_hash: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lower-case hex characters').nullable().default(null),
  /** The fields the gateway cut to their limit; absent (events of older gateways) reads as none. */
  truncated: z
    .array(z.enum(TRUNCATABLE_FIELDS))
    .max(TRUNCATABLE_FIELDS.length)
    .default([])
    .describe('Fields cut to their AUDIT_TEXT_LIMITS length by the gateway, e.g. ["path", "user_agent"]'),
});

export type AuditEvent = z.output<typeof auditEventSchema>;
export type RateLimitState = z.output<typeof rateLimitStateSchema>;
export type Decision = AuditEvent['decision'];
