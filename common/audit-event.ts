/**
 * The audit event: one per request that reached the gateway, allowed or denied.
 * Credentials (tokens, cookies, Authorization) are never part of it.
 */
import { z } from 'zod';

const text = (max: number) => z.string().max(max);

export const rateLimitStateSchema = z.strictObject({
  limit: text(200).describe('Which limit decided, e.g. tier:free:minute or route:payments:second'),
  max: z.number().int().min(0),
  remaining: z.number().int().min(0),
  reset_s: z.number().int().min(0),
});

export const auditEventSchema = z.strictObject({
  event_id: z.uuid(),
  ts: z.iso.datetime({ offset: true }),
  request_id: text(128),
  gateway_id: text(128),
  route: text(128).nullable(),
  method: text(32),
  path: text(4096),
  status: z.number().int().min(0).max(999),
  decision: z.enum(['allow', 'deny']),
  reason: text(64).nullable(),
  detail: text(64).nullable(),
  sub: text(512).nullable(),
  consumer: text(640).nullable(),
  jti: text(512).nullable(),
  client_ip: text(64),
  user_agent: text(512).nullable(),
  latency_ms: z.number().min(0),
  upstream_status: z.number().int().min(0).max(999).nullable(),
  bytes_out: z.number().int().min(0),
  rate_limit: rateLimitStateSchema.nullable(),
  fail_open: z.boolean(),
  shadow: z.boolean(),
});

export type AuditEvent = z.output<typeof auditEventSchema>;
export type RateLimitState = z.output<typeof rateLimitStateSchema>;
export type Decision = AuditEvent['decision'];
