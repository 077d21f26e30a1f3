/**
 * The security event: one per change of the security state the sidecar enforces (a ban, an
 * unban, a revocation), by hand or by an anomaly rule. Published by the admin CLI on the audit
 * queue (job SECURITY_JOB) and stored by the audit worker in audit_security_events; the worker
 * writes its own (automatic bans) straight to the store. One builder, securityEvent(), for both.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { z } from 'zod';
import type { BanTarget } from './security-state.js';

/** The longest value of each text field, in characters; longer values are refused, not cut. */
export const SECURITY_TEXT_LIMITS = {
  actor: 200,
  /** An ip, a consumer id (`<issuer>:<sub>`, like the audit event's consumer) or a jti. */
  subject: 640,
  reason: 500,
} as const;

/**
 * `admin_query`: one use of the query API by the admin token (its subject the route);
 * `limit_set` / `limit_clear`: a consumer's own rate limit set or cleared (`admin limits`, the
 * limit in the reason); `user_add` / `user_enable`: a user of the own issuer added or enabled
 * again (`admin users`; disabling and a new password are `revoke`s of the consumer). Newest last
 * (the store widens its check by it).
 */
export const SECURITY_EVENT_KINDS = ['ban', 'unban', 'revoke', 'admin_query', 'limit_set', 'limit_clear', 'user_add', 'user_enable'] as const;
/** `kid`: a signing key (`revoke --kid`); newest last (the store widens its check by it). */
export const SECURITY_SUBJECT_KINDS = ['ip', 'consumer', 'jti', 'route', 'kid'] as const;

export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];
export type SecuritySubjectKind = (typeof SECURITY_SUBJECT_KINDS)[number];

const CONTROL = /[\u0000-\u001f\u007f]/;
/** A compact JWS (three base64url parts, the first a JSON header): what a pasted token looks like. */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;

/** One line of printable text: a control character could forge lines in logs and tables. */
const line = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((text) => !CONTROL.test(text), 'must not contain control characters');

export const securityReason = line(SECURITY_TEXT_LIMITS.reason).refine(
  (text) => !JWT_LIKE.test(text),
  'must not contain a token (it would be stored and shown to every admin)',
);

export const securityEventSchema = z.strictObject({
  event_id: z.uuid(),
  ts: z.iso.datetime({ offset: true }),
  kind: z.enum(SECURITY_EVENT_KINDS),
  /** Who: `admin-cli:<os user>`, `rule:<rule name>`, `api-token:<short hash of the token>`. */
  actor: line(SECURITY_TEXT_LIMITS.actor),
  subject_kind: z.enum(SECURITY_SUBJECT_KINDS),
  subject: line(SECURITY_TEXT_LIMITS.subject),
  /** Why, in the actor's words; required, and never a token. */
  reason: securityReason,
  /** When the ban or revocation ends; null: until lifted (and always null for an unban). */
  until: z.iso.datetime({ offset: true }).nullable(),
  /** The anomaly alert that caused it (automatic bans); null by hand. */
  alert_id: z.uuid().nullable(),
});

export type SecurityEvent = z.output<typeof securityEventSchema>;

/** The actor of the admin CLI: the OS user running it (the CLI has no login of its own). */
export function adminCliActor(): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to the environment, then the uid.
    user = process.env.USER ?? process.env.LOGNAME ?? `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return `admin-cli:${user}`.slice(0, SECURITY_TEXT_LIMITS.actor);
}

/** The actor of an anomaly rule's automatic action. */
export function ruleActor(rule: string): string {
  return `rule:${rule}`;
}

export interface SecurityEventInput {
  kind: Exclude<SecurityEventKind, 'admin_query'>;
  actor: string;
  target: BanTarget | { kid: string };
  reason: string;
  /** Seconds from `now` until the ban or revocation ends; undefined: until lifted. */
  ttlSeconds?: number;
  alertId?: string | null;
  now?: () => number;
}

/** Subject kind and subject of a ban target, or of a revoked signing key. */
export function subjectOf(target: BanTarget | { kid: string }): { subject_kind: Exclude<SecuritySubjectKind, 'route'>; subject: string } {
  if ('kid' in target) return { subject_kind: 'kid', subject: target.kid };
  if ('ip' in target) return { subject_kind: 'ip', subject: target.ip };
  if ('consumer' in target) return { subject_kind: 'consumer', subject: target.consumer };
  return { subject_kind: 'jti', subject: target.jti };
}

/** A valid security event; throws (a ZodError naming the field) when an input is not. */
export function securityEvent({ kind, actor, target, reason, ttlSeconds, alertId = null, now = Date.now }: SecurityEventInput): SecurityEvent {
  const at = now();
  return securityEventSchema.parse({
    event_id: randomUUID(),
    ts: new Date(at).toISOString(),
    kind,
    actor,
    ...subjectOf(target),
    reason,
    until: kind !== 'unban' && ttlSeconds !== undefined ? new Date(at + ttlSeconds * 1000).toISOString() : null,
    alert_id: alertId,
  });
}
