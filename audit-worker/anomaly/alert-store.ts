/**
 * Alerts in the audit store (table audit_alerts, created by EventStore.migrate). An incident
 * is written with one upsert keyed by the alert id that detect.lua handed out, whose updates
 * add up, so two workers writing parts of one incident, in any order, leave one correct row.
 */
import type { SqlClient } from '../store/sql-client.js';
import type { AlertFilter } from './alert-filter.js';
import { MAX_SAMPLES } from './detector.js';

export const ALERTS_DDL = `
CREATE TABLE IF NOT EXISTS audit_alerts (
  id uuid PRIMARY KEY,
  rule text NOT NULL,
  severity text NOT NULL,
  subject_kind text NOT NULL,
  subject text NOT NULL,
  count integer NOT NULL,
  window_s integer NOT NULL,
  first_ts timestamptz NOT NULL,
  last_ts timestamptz NOT NULL,
  sample_event_ids uuid[] NOT NULL,
  sample_request_ids text[] NOT NULL,
  action text NOT NULL,
  shadow boolean NOT NULL,
  allow_listed boolean NOT NULL,
  ban_until timestamptz,
  status text NOT NULL DEFAULT 'open',
  acked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_alerts_status CHECK (status IN ('open', 'acked')),
  CONSTRAINT audit_alerts_severity CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  CONSTRAINT audit_alerts_action CHECK (action IN ('alert', 'ban'))
);
CREATE INDEX IF NOT EXISTS audit_alerts_last_ts ON audit_alerts (last_ts DESC, id DESC);`;

export interface AlertWrite {
  id: string;
  rule: string;
  severity: string;
  subject_kind: string;
  subject: string;
  count: number;
  window_s: number;
  first_ts: string;
  last_ts: string;
  sample_event_ids: string[];
  sample_request_ids: string[];
  /** The rule's action; with shadow or allow_listed it was not taken. */
  action: 'alert' | 'ban';
  shadow: boolean;
  allow_listed: boolean;
  ban_until: string | null;
}

export interface Alert extends AlertWrite {
  status: 'open' | 'acked';
  acked_at: string | null;
}

const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const ts = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', ${UTC_MS}) AS ${column}`;
const SELECT = `SELECT id, rule, severity, subject_kind, subject, count, window_s, ${ts('first_ts')}, ${ts('last_ts')},
  sample_event_ids::text[] AS sample_event_ids, sample_request_ids, action, shadow, allow_listed,
  ${ts('ban_until')}, status, ${ts('acked_at')} FROM audit_alerts`;

const UPSERT = `
INSERT INTO audit_alerts (id, rule, severity, subject_kind, subject, count, window_s, first_ts, last_ts,
  sample_event_ids, sample_request_ids, action, shadow, allow_listed, ban_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid[], $11::text[], $12, $13, $14, $15)
ON CONFLICT (id) DO UPDATE SET
  count = audit_alerts.count + excluded.count,
  first_ts = least(audit_alerts.first_ts, excluded.first_ts),
  last_ts = greatest(audit_alerts.last_ts, excluded.last_ts),
  sample_event_ids = (audit_alerts.sample_event_ids || excluded.sample_event_ids)[1:${MAX_SAMPLES}],
  sample_request_ids = (audit_alerts.sample_request_ids || excluded.sample_request_ids)[1:${MAX_SAMPLES}],
  ban_until = greatest(audit_alerts.ban_until, excluded.ban_until)`;

export class AlertStore {
  constructor(private readonly sql: SqlClient) {}

  async upsert(alert: AlertWrite): Promise<void> {
    await this.sql.query(UPSERT, [
      alert.id, alert.rule, alert.severity, alert.subject_kind, alert.subject, alert.count, alert.window_s,
      alert.first_ts, alert.last_ts, alert.sample_event_ids, alert.sample_request_ids, alert.action,
      alert.shadow, alert.allow_listed, alert.ban_until,
    ]);
  }

  /** Alerts matching every given filter, most recently active first. */
  async query(filter: AlertFilter): Promise<Alert[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (filter.status !== undefined) where.push(`status = ${param(filter.status)}`);
    if (filter.rule !== undefined) where.push(`rule = ${param(filter.rule)}`);
    if (filter.subject !== undefined) where.push(`subject = ${param(filter.subject)}`);
    if (filter.since !== undefined) where.push(`last_ts >= ${param(filter.since)}::timestamptz`);
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY last_ts DESC, id DESC LIMIT ${param(filter.limit)}`;
    return (await this.sql.query<Alert>(sql, params)).rows;
  }

  /** Marks an alert acknowledged; undefined when there is no alert of that id. */
  async ack(id: string): Promise<Alert | undefined> {
    const { rows } = await this.sql.query<{ id: string }>(
      `UPDATE audit_alerts SET status = 'acked', acked_at = coalesce(acked_at, now()) WHERE id = $1 RETURNING id`,
      [id],
    );
    if (rows.length === 0) return undefined;
    return (await this.sql.query<Alert>(`${SELECT} WHERE id = $1`, [id])).rows[0];
  }
}
