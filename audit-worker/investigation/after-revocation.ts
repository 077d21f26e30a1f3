/**
 * `after-revocation --jti|--sub|--consumer`: every request that presented a token after it (or
 * its consumer) was revoked, and how many were allowed. Revocations come from
 * audit_security_events: a `revoke` of the jti or the consumer, and a `ban` of the jti (the same
 * key: a revoked token). A jti's revocation lasts until its `until` or the first `unban` of the
 * jti after it; a consumer's has no end (`revoke --consumer` is not lifted by an unban) but covers
 * only the tokens issued up to it (inWindow). `--sub S`
 * takes the revocations of every consumer `<issuer>:S` and each consumer's own requests.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { SecurityEvent } from '../../common/security-event.js';
import type { SqlClient } from '../store/sql-client.js';
import type { AfterRevocationQuery } from './params.js';
import { REQUEST_SELECT, requestItem, securityEvent, SECURITY_SELECT, type RequestRow, type SecurityRow } from './rows.js';

export interface AfterRevocation {
  scope: { jti: string } | { sub: string } | { consumer: string };
  /** The revocations found, oldest first. */
  revocations: SecurityEvent[];
  /** Requests in a revocation's window. */
  requests: number;
  allowed: number;
  /** Of the allowed: those let through because Redis was unreachable on a fail_open route. */
  allowed_fail_open: number;
  /** The first `limit` of those requests, oldest first. */
  events: AuditEvent[];
  /** One line for an incident report. */
  summary: string;
}

/** The revocations in scope ($1 the jti, consumer or sub), each with its window [from_ts, to_ts). */
function revocationsSql(scope: 'jti' | 'sub' | 'consumer'): string {
  const match =
    scope === 'jti'
      ? `r.subject_kind = 'jti' AND r.subject = $1::text AND r.kind IN ('revoke', 'ban')`
      : scope === 'consumer'
        ? `r.subject_kind = 'consumer' AND r.subject = $1::text AND r.kind = 'revoke'`
        : `r.subject_kind = 'consumer' AND right(r.subject, length($1::text) + 1) = ':' || $1::text AND r.kind = 'revoke'`;
  return `
    SELECT r.event_id, r.subject, r.ts AS from_ts,
      CASE WHEN r.subject_kind = 'jti' THEN least(
        coalesce(r.until, 'infinity'::timestamptz),
        coalesce((SELECT min(u.ts) FROM audit_security_events u
                  WHERE u.kind = 'unban' AND u.subject_kind = 'jti' AND u.subject = r.subject AND u.ts > r.ts), 'infinity'::timestamptz))
      ELSE 'infinity'::timestamptz END AS to_ts
    FROM audit_security_events r WHERE ${match}`;
}

/**
 * Requests in scope inside a revocation's window: `e` the request, `v` the revocations. A
 * consumer's revocation revokes the tokens issued up to its second (iat <= that second), so a
 * request with a token issued after it is not one; an event without token_iat (a token without
 * iat, which the sidecar counts as revoked, or an event of an older gateway) is counted.
 */
function inWindow(scope: 'jti' | 'sub' | 'consumer'): string {
  const owner = scope === 'jti' ? 'e.jti = $1::text' : scope === 'consumer' ? 'e.consumer = $1::text' : 'e.sub = $1::text';
  const same =
    scope === 'jti' ? '' : ` AND e.consumer = v.subject AND (e.token_iat IS NULL OR e.token_iat < date_trunc('second', v.from_ts) + interval '1 second')`;
  return `${owner} AND EXISTS (SELECT 1 FROM revocations v WHERE e.ts >= v.from_ts AND e.ts < v.to_ts${same})`;
}

export async function afterRevocation(sql: SqlClient, q: AfterRevocationQuery): Promise<AfterRevocation> {
  const [scope, subject] = q.jti !== undefined ? (['jti', q.jti] as const) : q.consumer !== undefined ? (['consumer', q.consumer] as const) : (['sub', q.sub!] as const);
  const cte = `WITH revocations AS (${revocationsSql(scope)})`;
  const revocations = (
    await sql.query<SecurityRow>(`${cte} ${SECURITY_SELECT} WHERE event_id IN (SELECT event_id FROM revocations) ORDER BY audit_security_events.ts, audit_security_events.event_id`, [subject])
  ).rows.map(securityEvent);
  const [counts] = (
    await sql.query<{ requests: number | string; allowed: number | string; fail_open: number | string }>(
      `${cte} SELECT count(*) AS requests, count(*) FILTER (WHERE decision = 'allow') AS allowed,
         count(*) FILTER (WHERE decision = 'allow' AND fail_open) AS fail_open
       FROM audit_events e WHERE ${inWindow(scope)}`,
      [subject],
    )
  ).rows;
  const events = (
    await sql.query<RequestRow>(
      `${cte} ${REQUEST_SELECT.replace('FROM audit_events', 'FROM audit_events e')} WHERE ${inWindow(scope)} ORDER BY e.ts, e.event_id LIMIT $2`,
      [subject, q.limit],
    )
  ).rows.map((row) => {
    const { source: _, ...event } = requestItem(row);
    return event;
  });
  const requests = Number(counts?.requests ?? 0);
  const allowed = Number(counts?.allowed ?? 0);
  const failOpen = Number(counts?.fail_open ?? 0);
  return {
    scope: { [scope]: subject } as AfterRevocation['scope'],
    revocations,
    requests,
    allowed,
    allowed_fail_open: failOpen,
    events,
    summary: summary(scope, subject, revocations, requests, allowed, failOpen),
  };
}

function summary(scope: string, subject: string, revocations: SecurityEvent[], requests: number, allowed: number, failOpen: number): string {
  const first = revocations[0];
  if (!first) return `no revocation of ${scope} ${subject} is recorded`;
  const at = revocations.length === 1 ? `the revocation at ${first.ts}` : `the ${revocations.length} revocations (first at ${first.ts})`;
  const line = `${allowed} of ${requests} request${requests === 1 ? '' : 's'} after ${at} ${allowed === 1 || requests === 1 ? 'was' : 'were'} allowed`;
  return allowed === 0 ? line : `${line} (${failOpen} by fail_open while Redis was unreachable)`;
}
