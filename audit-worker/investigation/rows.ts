/**
 * The two kinds of stored event as the investigation answers show them. Merged answers (events
 * of kind security or all, export) tag each item with `source`: `request` (an audit event) or
 * `security` (a security event), and order both by (ts, event_id), microseconds kept.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { SecurityEvent } from '../../common/security-event.js';
import { SELECT_COLUMNS, toEvent, type Row } from '../store/event-store.js';

export type RequestItem = AuditEvent & { source: 'request' };
export type SecurityItem = SecurityEvent & { source: 'security' };
export type Item = RequestItem | SecurityItem;

const UTC_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** Request rows: the event columns, plus `ts_us` (the keyset's microsecond time). */
export const REQUEST_SELECT = `SELECT ${SELECT_COLUMNS}, to_char(ts AT TIME ZONE 'UTC', ${UTC_US}) AS ts_us FROM audit_events`;

export const SECURITY_SELECT = `SELECT event_id::text AS event_id, to_char(ts AT TIME ZONE 'UTC', ${UTC_MS}) AS ts,
  to_char(ts AT TIME ZONE 'UTC', ${UTC_US}) AS ts_us, kind, actor, subject_kind, subject, reason,
  to_char(until AT TIME ZONE 'UTC', ${UTC_MS}) AS until, alert_id::text AS alert_id FROM audit_security_events`;

export type RequestRow = Row & { ts_us: string };
export type SecurityRow = SecurityEvent & { ts_us: string };

export const requestItem = (row: RequestRow): RequestItem => ({ source: 'request', ...toEvent(row) });

export function securityEvent(row: SecurityRow): SecurityEvent {
  const { ts_us: _, ...event } = row;
  return event;
}
export const securityItem = (row: SecurityRow): SecurityItem => ({ source: 'security', ...securityEvent(row) });

/** (ts, event_id) order of two rows: negative when `a` is older. uuid text orders as uuid. */
export function compareRows(a: { ts_us: string; event_id: string }, b: { ts_us: string; event_id: string }): number {
  if (a.ts_us !== b.ts_us) return a.ts_us < b.ts_us ? -1 : 1;
  return a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0;
}
