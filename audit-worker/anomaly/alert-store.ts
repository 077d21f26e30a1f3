/**
 * Alerts in the audit store (table audit_alerts, created by EventStore.migrate). An incident
 * is written with one upsert keyed by the alert id that detect.lua handed out, whose updates
 * add up, so two workers writing parts of one incident, in any order, leave one correct row.
 * With the webhook on, each state change is queued for it in the same statement (webhook-outbox.ts).
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
/** The columns of an Alert as the API answers it, from audit_alerts or a CTE returning its rows. */
export const ALERT_COLUMNS = `id, rule, severity, subject_kind, subject, count, window_s, ${ts('first_ts')}, ${ts('last_ts')},
  sample_event_ids::text[] AS sample_event_ids, sample_request_ids, action, shadow, allow_listed,
  ${ts('ban_until')}, status, ${ts('acked_at')}`;
const SELECT = `SELECT ${ALERT_COLUMNS} FROM audit_alerts`;

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
  ban_until = greatest(audit_alerts.ban_until, excluded.ban_until)
RETURNING *, (xmax = 0) AS inserted`;

// The upsert and, when the webhook is on ($16), its state change queued in the same statement
// (webhook-outbox.ts): the statement that inserted the row (xmax = 0: not an update) is the one
// `opened`, whichever worker's batch it was; a later write bringing a ban to a still open alert is
// its escalation, `banned`. ON CONFLICT keeps each (alert, state) to one row.
const UPSERT_QUEUEING = `
WITH up AS (${UPSERT}),
queued AS (
  INSERT INTO audit_alert_webhooks (alert_id, state, alert)
  SELECT id, CASE WHEN inserted THEN 'opened' ELSE 'banned' END, to_jsonb(a) - 'inserted'
  FROM (SELECT ${ALERT_COLUMNS}, inserted FROM up) a
  WHERE $16::boolean AND (inserted OR ($15::timestamptz IS NOT NULL AND status = 'open'))
  ON CONFLICT (alert_id, state) DO NOTHING
  RETURNING 1
)
SELECT count(*)::int AS queued FROM queued`;

// Only the ack that finds the alert open changes it (and queues `acked` when $2). No row: the
// alert was acked already (maybe by a concurrent ack this one waited for) or does not exist.
const ACK = `
WITH acked AS (
  UPDATE audit_alerts SET status = 'acked', acked_at = now() WHERE id = $1 AND status = 'open' RETURNING *
),
queued AS (
  INSERT INTO audit_alert_webhooks (alert_id, state, alert)
  SELECT id, 'acked', to_jsonb(a) FROM (SELECT ${ALERT_COLUMNS} FROM acked) a
  WHERE $2::boolean
  ON CONFLICT (alert_id, state) DO NOTHING
  RETURNING 1
)
SELECT ${ALERT_COLUMNS}, (SELECT count(*)::int FROM queued) AS queued FROM acked`;

export interface AlertStoreOptions {
  /** Set when the alert webhook is on: state changes are queued for it, and this is called when one was. */
  onWebhookQueued?: () => void;
}

export class AlertStore {
  constructor(private readonly sql: SqlClient, private readonly options: AlertStoreOptions = {}) {}

  private get webhook(): boolean {
    return this.options.onWebhookQueued !== undefined;
  }

  private queued(count: number | undefined): void {
    if (count) this.options.onWebhookQueued?.();
  }

  async upsert(alert: AlertWrite): Promise<void> {
    const { rows } = await this.sql.query<{ queued: number }>(UPSERT_QUEUEING, [
      alert.id, alert.rule, alert.severity, alert.subject_kind, alert.subject, alert.count, alert.window_s,
      alert.first_ts, alert.last_ts, alert.sample_event_ids, alert.sample_request_ids, alert.action,
      alert.shadow, alert.allow_listed, alert.ban_until, this.webhook,
    ]);
    this.queued(rows[0]?.queued);
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
    const [row] = (await this.sql.query<Alert & { queued: number }>(ACK, [id, this.webhook])).rows;
    if (row) {
      const { queued, ...alert } = row;
      this.queued(queued);
      return alert;
    }
    // A statement of its own, so it sees a concurrent ack that committed meanwhile.
    return (await this.sql.query<Alert>(`${SELECT} WHERE id = $1`, [id])).rows[0];
  }
}
