/**
 * Security events in the audit store (table audit_security_events, created by EventStore.migrate):
 * bans, unbans and revocations, by hand (the admin CLI, through the queue) or automatic (the
 * worker's anomaly responder, directly). The insert is idempotent by event_id, as for audit events.
 */
import { SECURITY_EVENT_KINDS, SECURITY_SUBJECT_KINDS, type SecurityEvent } from '../../common/security-event.js';
import type { SecurityEventFilter } from '../security-event-filter.js';
import type { SqlClient } from './sql-client.js';

const KIND_CHECK = `CHECK (kind IN (${SECURITY_EVENT_KINDS.map((k) => `'${k}'`).join(', ')}))`;
const SUBJECT_KIND_CHECK = `CHECK (subject_kind IN (${SECURITY_SUBJECT_KINDS.map((k) => `'${k}'`).join(', ')}))`;

/**
 * Tables made before a kind was added keep the older CHECKs: each is replaced when its definition
 * lacks the newest value (a migration step: SECURITY_KIND_CHECKS_WIDENED).
 */
const widenCheck = (name: string, check: string, newest: string) => `
DO $widen$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '${name}' AND conrelid = 'audit_security_events'::regclass
             AND position('${newest}' IN pg_get_constraintdef(oid)) = 0) THEN
    ALTER TABLE audit_security_events DROP CONSTRAINT ${name};
    ALTER TABLE audit_security_events ADD CONSTRAINT ${name} ${check};
  END IF;
END $widen$;`;

export const SECURITY_EVENTS_DDL = `
CREATE TABLE IF NOT EXISTS audit_security_events (
  event_id uuid PRIMARY KEY,
  ts timestamptz NOT NULL,
  kind text NOT NULL,
  actor text NOT NULL,
  subject_kind text NOT NULL,
  subject text NOT NULL,
  reason text NOT NULL,
  until timestamptz,
  alert_id uuid,
  stored_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_security_events_kind ${KIND_CHECK},
  CONSTRAINT audit_security_events_subject_kind ${SUBJECT_KIND_CHECK}
);
CREATE INDEX IF NOT EXISTS audit_security_events_ts ON audit_security_events (ts DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS audit_security_events_subject_ts ON audit_security_events (subject, ts);`;

/** Migration step: the kind checks of a table made before `admin_query` (and any later kind) widened. */
export const SECURITY_KIND_CHECKS_WIDENED = `${widenCheck('audit_security_events_kind', KIND_CHECK, SECURITY_EVENT_KINDS.at(-1)!)}${widenCheck('audit_security_events_subject_kind', SUBJECT_KIND_CHECK, SECURITY_SUBJECT_KINDS.at(-1)!)}`;

const COLUMNS = ['event_id', 'ts', 'kind', 'actor', 'subject_kind', 'subject', 'reason', 'until', 'alert_id'] as const satisfies readonly (keyof SecurityEvent)[];
const TYPES: Record<(typeof COLUMNS)[number], string> = {
  event_id: 'uuid', ts: 'timestamptz', kind: 'text', actor: 'text', subject_kind: 'text', subject: 'text', reason: 'text', until: 'timestamptz', alert_id: 'uuid',
};

// One statement per batch, the batch as one jsonb parameter; an event id already stored is skipped.
const INSERT = `
WITH ins AS (
  INSERT INTO audit_security_events (${COLUMNS.join(', ')})
  SELECT ${COLUMNS.join(', ')}
  FROM jsonb_to_recordset($1::jsonb) AS x(${COLUMNS.map((c) => `${c} ${TYPES[c]}`).join(', ')})
  ON CONFLICT (event_id) DO NOTHING
  RETURNING 1
)
SELECT count(*)::int AS n FROM ins`;

const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const SELECT = `SELECT ${COLUMNS.map((c) => (TYPES[c] === 'timestamptz' ? `to_char(${c} AT TIME ZONE 'UTC', ${UTC_MS}) AS ${c}` : c === 'event_id' || c === 'alert_id' ? `${c}::text AS ${c}` : c)).join(', ')} FROM audit_security_events`;

/**
 * Stores security events (already validated: securityEvent() builds them, the worker checks
 * queued ones); resolves how many were new. Exported on its own for callers holding a SqlClient.
 */
export async function insertSecurityEvents(sql: SqlClient, events: readonly SecurityEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const { rows } = await sql.query<{ n: number }>(INSERT, [JSON.stringify(events)]);
  return rows[0]?.n ?? 0;
}

export class SecurityEventStore {
  constructor(private readonly sql: SqlClient) {}

  /** Stores events, skipping ids already stored; resolves how many were new. */
  insert(events: readonly SecurityEvent[]): Promise<number> {
    return insertSecurityEvents(this.sql, events);
  }

  /** Events matching every given filter, newest first. */
  async query(filter: SecurityEventFilter): Promise<SecurityEvent[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (filter.kind !== undefined) where.push(`kind = ${param(filter.kind)}`);
    if (filter.subject !== undefined) where.push(`subject = ${param(filter.subject)}`);
    if (filter.actor !== undefined) where.push(`actor = ${param(filter.actor)}`);
    if (filter.since !== undefined) where.push(`ts >= ${param(filter.since)}::timestamptz`);
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ts DESC, event_id DESC LIMIT ${param(filter.limit)}`;
    return (await this.sql.query<SecurityEvent>(sql, params)).rows;
  }
}
