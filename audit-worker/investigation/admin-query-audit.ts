/**
 * Each use of the query API by the admin token is a security event of kind `admin_query`: actor
 * `api-token:<first 12 hex of the token's SHA-256>` (tells tokens apart, never reveals one),
 * subject the method and path, reason the query string. One insert per API call, awaited before
 * the answer: a query the store could not record is not answered (it fails as any query would).
 */
import { createHash, randomUUID } from 'node:crypto';
import { SECURITY_TEXT_LIMITS, securityEventSchema, type SecurityEvent } from '../../common/security-event.js';

/** `api-token:` and the first 12 hex digits of the token's SHA-256. */
export function apiTokenActor(token: string): string {
  return `api-token:${createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12)}`;
}

const CONTROL = /[\u0000-\u001f\u007f]/g;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** One printable line of at most `max` characters, with any token in it replaced. */
function clean(text: string, max: number, secret: string): string {
  const out = text.replaceAll(secret, '[admin-token]').replace(JWT_LIKE, '[token]').replace(CONTROL, '?');
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

export interface AdminQuery {
  method: string;
  /** The path, e.g. /v1/trace/abc. */
  path: string;
  /** The raw query string without `?`; '' when none. */
  query: string;
}

/** The security event of one admin query; `token` only names the actor (hashed) and is scrubbed from the rest. */
export function adminQueryEvent(token: string, call: AdminQuery, now: () => number = Date.now): SecurityEvent {
  let query = call.query;
  try {
    query = decodeURIComponent(query.replace(/\+/g, ' '));
  } catch {
    // A malformed escape: keep the raw text.
  }
  return securityEventSchema.parse({
    event_id: randomUUID(),
    ts: new Date(now()).toISOString(),
    kind: 'admin_query',
    actor: apiTokenActor(token),
    subject_kind: 'route',
    subject: clean(`${call.method} ${call.path}`, SECURITY_TEXT_LIMITS.subject, token),
    reason: clean(query === '' ? '(no parameters)' : query, SECURITY_TEXT_LIMITS.reason, token),
    until: null,
    alert_id: null,
  });
}
