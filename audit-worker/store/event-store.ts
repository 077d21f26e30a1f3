/**
 * Audit events in SQL: idempotent batch insert (the queue redelivers; `event_id` decides) and
 * keyset-paginated queries, newest first. Parameterized SQL only.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { EventFilter } from '../event-filter.js';
import { ALERTS_DDL } from '../anomaly/alert-store.js';
import { CHAIN_DDL } from '../chain/chain-sql.js';
import { WEBHOOK_OUTBOX_DDL } from '../anomaly/webhook-outbox.js';
import { encodeCursor } from './cursor.js';
import { SECURITY_EVENTS_DDL } from './security-event-store.js';
import { DDL_LOCK_KEY, type SqlClient } from './sql-client.js';

/** Column name → SQL type; one column per field of AuditEvent, in its order. */
const COLUMNS = {
  event_id: 'uuid',
  ts: 'timestamptz',
  request_id: 'text',
  gateway_id: 'text',
  route: 'text',
  method: 'text',
  path: 'text',
  status: 'integer',
  decision: 'text',
  reason: 'text',
  detail: 'text',
  sub: 'text',
  consumer: 'text',
  jti: 'text',
  client_ip: 'text',
  user_agent: 'text',
  latency_ms: 'double precision',
  upstream_status: 'integer',
  bytes_out: 'bigint',
  rate_limit: 'jsonb',
  fail_open: 'boolean',
  shadow: 'boolean',
  truncated: 'text[]',
} as const satisfies Record<keyof AuditEvent, string>;

const NOT_NULL = new Set<string>(['event_id', 'ts', 'request_id', 'gateway_id', 'method', 'path', 'status', 'decision', 'client_ip', 'latency_ms', 'bytes_out', 'fail_open', 'shadow', 'truncated']);
/** Defaults of the columns added after the table's first version, so existing rows get a value. */
const DEFAULTS: Partial<Record<keyof AuditEvent, string>> = { truncated: `'{}'` };
/** Columns added after the first version of the table: ADD COLUMN IF NOT EXISTS on existing databases. */
const ADDED_LATER: (keyof AuditEvent)[] = ['truncated'];
const NAMES = Object.keys(COLUMNS) as (keyof AuditEvent)[];

function columnDefinition(n: keyof AuditEvent): string {
  const key = n === 'event_id' ? ' PRIMARY KEY' : NOT_NULL.has(n) ? ' NOT NULL' : '';
  const fallback = DEFAULTS[n] ? ` DEFAULT ${DEFAULTS[n]}` : '';
  return `${n} ${COLUMNS[n]}${key}${fallback}`;
}

const UTC_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

const MIGRATION = `
BEGIN;
SELECT pg_advisory_xact_lock(${DDL_LOCK_KEY});
CREATE TABLE IF NOT EXISTS audit_events (
  ${NAMES.map(columnDefinition).join(',\n  ')},
  stored_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_events_decision CHECK (decision IN ('allow', 'deny'))
);
${ADDED_LATER.map((n) => `ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS ${columnDefinition(n)};`).join('\n')}
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events (ts DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS audit_events_sub_ts ON audit_events (sub, ts);
CREATE INDEX IF NOT EXISTS audit_events_consumer_ts ON audit_events (consumer, ts);
CREATE INDEX IF NOT EXISTS audit_events_client_ip_ts ON audit_events (client_ip, ts);
CREATE INDEX IF NOT EXISTS audit_events_request_id ON audit_events (request_id);
CREATE TABLE IF NOT EXISTS audit_events_rejected (
  event_id uuid PRIMARY KEY,
  request_id text NOT NULL,
  error_code text NOT NULL,
  raw text NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now()
);
${ALERTS_DDL}
${WEBHOOK_OUTBOX_DDL}
${SECURITY_EVENTS_DDL}
${CHAIN_DDL}
COMMIT;`;

// One statement per batch: the batch travels as one jsonb parameter; conflicts are skipped.
const INSERT = `
WITH ins AS (
  INSERT INTO audit_events (${NAMES.join(', ')})
  SELECT ${NAMES.join(', ')}
  FROM jsonb_to_recordset($1::jsonb) AS x(${NAMES.map((n) => `${n} ${COLUMNS[n]}`).join(', ')})
  ON CONFLICT (event_id) DO NOTHING
  RETURNING 1
)
SELECT count(*)::int AS n FROM ins`;

// An event the database refused, as JSON text: text columns cannot hold NUL either, so NULs are
// written as the six characters \u0000 (JSON.stringify already escapes them inside `raw`).
const SET_ASIDE = `
INSERT INTO audit_events_rejected (event_id, request_id, error_code, raw)
VALUES ($1, $2, $3, $4)
ON CONFLICT (event_id) DO NOTHING`;

const escapeNul = (text: string): string => text.replaceAll('\0', '\\u0000');

const SELECT_COLUMNS = NAMES.map((n) => (n === 'ts' ? `to_char(ts AT TIME ZONE 'UTC', ${UTC_US}) AS ts` : n)).join(', ');

/** Equality filters: query parameter → column. */
const EQUALS = ['sub', 'consumer', 'client_ip', 'route', 'decision', 'reason', 'request_id'] as const;

type Row = Omit<AuditEvent, 'latency_ms' | 'bytes_out'> & { latency_ms: number | string; bytes_out: number | string | bigint };

export interface EventPage {
  events: AuditEvent[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

/** Microsecond text from the database → the ISO form the gateway writes (milliseconds when exact). */
function isoTs(us: string): string {
  return us.replace(/(\.\d{3})000Z$/, '$1Z');
}

function toEvent(row: Row): AuditEvent {
  // pg returns bigint as a string (PGlite as a number), so both are converted here.
  const event = {} as Record<string, unknown>;
  for (const n of NAMES) event[n] = row[n];
  event.ts = isoTs(row.ts);
  event.latency_ms = Number(row.latency_ms);
  event.bytes_out = Number(row.bytes_out);
  return event as AuditEvent;
}

export class EventStore {
  constructor(private readonly sql: SqlClient) {}

  async migrate(): Promise<void> {
    await this.sql.exec(MIGRATION);
  }

  /**
   * Stores a batch in one statement; returns how many events were new (the rest were already
   * stored). One event the database refuses fails the whole statement: see insertIsolating.
   */
  async insert(events: readonly AuditEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const { rows } = await this.sql.query<{ n: number }>(INSERT, [JSON.stringify(events)]);
    return rows[0]?.n ?? 0;
  }

  /** Keeps an event the database refused to store, with the SQLSTATE; once per event id. */
  async setAside(event: AuditEvent, errorCode: string): Promise<void> {
    await this.sql.query(SET_ASIDE, [event.event_id, escapeNul(event.request_id), errorCode, escapeNul(JSON.stringify(event))]);
  }

  /** Events matching every given filter, newest first, one page of `filter.limit`. */
  async query(filter: EventFilter): Promise<EventPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    for (const key of EQUALS) {
      const value = filter[key];
      if (value !== undefined) where.push(`${key} = ${param(value)}`);
    }
    if (filter.since !== undefined) where.push(`ts >= ${param(filter.since)}::timestamptz`);
    if (filter.until !== undefined) where.push(`ts < ${param(filter.until)}::timestamptz`);
    if (filter.cursor !== undefined) {
      where.push(`(ts, event_id) < (${param(filter.cursor.ts)}::timestamptz, ${param(filter.cursor.event_id)}::uuid)`);
    }
    const sql =
      `SELECT ${SELECT_COLUMNS} FROM audit_events` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY ts DESC, event_id DESC LIMIT ${param(filter.limit + 1)}`;
    const { rows } = await this.sql.query<Row>(sql, params);
    const page = rows.slice(0, filter.limit);
    const last = page[page.length - 1];
    return {
      events: page.map(toEvent),
      next_cursor: rows.length > filter.limit && last ? encodeCursor({ ts: last.ts, event_id: last.event_id }) : null,
    };
  }
}
