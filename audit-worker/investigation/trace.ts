/**
 * `trace <request_id>`: everything known about one request: its event, the alerts that cite it
 * (sample_request_ids), the security events that cite those alerts or name its token, consumer
 * or address, and the other requests of the same token (jti) within ±10 minutes of it.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { SecurityEvent } from '../../common/security-event.js';
import { ALERT_COLUMNS, type Alert } from '../anomaly/alert-store.js';
import type { SqlClient } from '../store/sql-client.js';
import { REQUEST_SELECT, requestItem, securityEvent, SECURITY_SELECT, type RequestRow, type SecurityRow } from './rows.js';

export const TRACE_WINDOW_MS = 10 * 60_000;
/** The most same-token requests and security events one trace lists (newest security events first). */
export const TRACE_MAX_RELATED = 1000;

export interface Trace {
  event: AuditEvent;
  alerts: Alert[];
  security_events: SecurityEvent[];
  /** Other requests of the same jti within ±10 minutes, oldest first; [] for a request without a token. */
  same_token: AuditEvent[];
  /** True when same_token stopped at TRACE_MAX_RELATED. */
  same_token_truncated: boolean;
}

const plain = (row: RequestRow): AuditEvent => {
  const { source: _, ...event } = requestItem(row);
  return event;
};

/** The trace of a request, or undefined when no event has this request id. */
export async function trace(sql: SqlClient, requestId: string): Promise<Trace | undefined> {
  const found = (await sql.query<RequestRow>(`${REQUEST_SELECT} WHERE request_id = $1 ORDER BY audit_events.ts, audit_events.event_id LIMIT 1`, [requestId])).rows[0];
  if (!found) return undefined;
  const event = plain(found);

  const alerts = (
    await sql.query<Alert>(`SELECT ${ALERT_COLUMNS} FROM audit_alerts WHERE sample_request_ids @> ARRAY[$1]::text[] ORDER BY last_ts DESC, id DESC`, [requestId])
  ).rows;

  const subjects: [string, string | null][] = [
    ['jti', event.jti],
    ['consumer', event.consumer],
    ['ip', event.client_ip],
  ];
  const params: unknown[] = [alerts.map((a) => a.id)];
  const bySubject = subjects
    .filter(([, subject]) => subject !== null)
    .map(([kind, subject]) => `(subject_kind = '${kind}' AND subject = $${params.push(subject)})`);
  const security = (
    await sql.query<SecurityRow>(
      `${SECURITY_SELECT} WHERE alert_id = ANY($1::uuid[]) OR ${bySubject.join(' OR ')} ORDER BY audit_security_events.ts DESC, audit_security_events.event_id DESC LIMIT ${TRACE_MAX_RELATED}`,
      params,
    )
  ).rows.map(securityEvent);

  let sameToken: AuditEvent[] = [];
  if (event.jti !== null) {
    const at = Date.parse(found.ts_us);
    sameToken = (
      await sql.query<RequestRow>(
        `${REQUEST_SELECT} WHERE jti = $1 AND ts >= $2::timestamptz AND ts <= $3::timestamptz AND event_id <> $4 ORDER BY audit_events.ts, audit_events.event_id LIMIT ${TRACE_MAX_RELATED + 1}`,
        [event.jti, new Date(at - TRACE_WINDOW_MS).toISOString(), new Date(at + TRACE_WINDOW_MS).toISOString(), event.event_id],
      )
    ).rows.map(plain);
  }
  return {
    event,
    alerts,
    security_events: security,
    same_token: sameToken.slice(0, TRACE_MAX_RELATED),
    same_token_truncated: sameToken.length > TRACE_MAX_RELATED,
  };
}
