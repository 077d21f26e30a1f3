/**
 * The table audit_events: its columns (one per field of AuditEvent) and its DDL, first as the
 * worker created it before versioned migrations (one unpartitioned table, kept so a database of
 * that time is adopted as is), then partitioned by day (partitions.ts creates and drops the days).
 */
import type { AuditEvent } from '../../common/audit-event.js';

/** Column name → SQL type; one column per field of AuditEvent, in its order. */
export const COLUMNS = {
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
  token_iat: 'timestamptz',
  client_ip: 'text',
  user_agent: 'text',
  latency_ms: 'double precision',
  upstream_status: 'integer',
  bytes_out: 'bigint',
  upstream_target: 'text',
  upstream_tries: 'integer',
  bytes_in: 'bigint',
  rate_limit: 'jsonb',
  fail_open: 'boolean',
  shadow: 'boolean',
  truncated: 'text[]',
  // 16 bytes in the row and its index where the hex text takes 33 (read back as hex by SELECT_COLUMNS).
  trace_id: 'uuid',
  config_hash: 'text',
} as const satisfies Record<keyof AuditEvent, string>;

export const NAMES = Object.keys(COLUMNS) as (keyof AuditEvent)[];

const NOT_NULL = new Set<string>(['event_id', 'ts', 'request_id', 'gateway_id', 'method', 'path', 'status', 'decision', 'client_ip', 'latency_ms', 'bytes_out', 'upstream_tries', 'fail_open', 'shadow', 'truncated']);
/** Defaults of the columns added after the table's first version, so existing rows get a value. */
const DEFAULTS: Partial<Record<keyof AuditEvent, string>> = { truncated: `'{}'`, upstream_tries: '0' };
/** Columns added after the first version of the table: ADD COLUMN IF NOT EXISTS on existing databases. */
const ADDED_LATER: (keyof AuditEvent)[] = ['truncated', 'token_iat', 'upstream_target', 'upstream_tries', 'bytes_in', 'trace_id', 'config_hash'];

function columnDefinition(n: keyof AuditEvent, primaryKey: boolean): string {
  const key = primaryKey && n === 'event_id' ? ' PRIMARY KEY' : NOT_NULL.has(n) ? ' NOT NULL' : '';
  const fallback = DEFAULTS[n] ? ` DEFAULT ${DEFAULTS[n]}` : '';
  return `${n} ${COLUMNS[n]}${key}${fallback}`;
}

/**
 * The columns added after the table's first version, added where missing: part of version 1,
 * run on the old table before it is partitioned (version 6), and a step of its own for a table
 * partitioned before a column was added (version 11: token_iat; 13: upstream_target,
 * upstream_tries, bytes_in; 17: trace_id, config_hash).
 */
export const ADDED_COLUMNS_DDL = ADDED_LATER.map((n) => `ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS ${columnDefinition(n, true)};`).join('\n');

/** Version 1: the table as the worker made it before migrations were versioned (adopts such a database). */
export const UNPARTITIONED_DDL = `
CREATE TABLE IF NOT EXISTS audit_events (
  ${NAMES.map((n) => columnDefinition(n, true)).join(',\n  ')},
  stored_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_events_decision CHECK (decision IN ('allow', 'deny'))
);
${ADDED_COLUMNS_DDL}
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events (ts DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS audit_events_sub_ts ON audit_events (sub, ts);
CREATE INDEX IF NOT EXISTS audit_events_consumer_ts ON audit_events (consumer, ts);
CREATE INDEX IF NOT EXISTS audit_events_client_ip_ts ON audit_events (client_ip, ts);
CREATE INDEX IF NOT EXISTS audit_events_request_id ON audit_events (request_id);`;

/** Events the database refused (or whose time the store does not keep), with the reason code. */
export const REJECTED_DDL = `
CREATE TABLE IF NOT EXISTS audit_events_rejected (
  event_id uuid PRIMARY KEY,
  request_id text NOT NULL,
  error_code text NOT NULL,
  raw text NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now()
);`;

/** The indexes of the version-1 table, dropped when it becomes partitioned (their names are reused). */
export const UNPARTITIONED_INDEXES = ['audit_events_ts', 'audit_events_sub_ts', 'audit_events_consumer_ts', 'audit_events_client_ip_ts', 'audit_events_request_id'];

/**
 * The partitioned table, by day of `ts` (UTC). The key must hold the partition column, so an
 * event is the same event when (ts, event_id) is: a redelivered event carries the ts the gateway
 * gave it once. (ts, event_id) in that order also serves every newest-first page without
 * another index, and is written at its right edge instead of at random places (a uuid first).
 * Each index is there for a question of the README's "Store" section; the partial ones skip the
 * rows without the value (anonymous requests), which no question looks for.
 */
export const PARTITIONED_DDL = `
CREATE TABLE audit_events (
  ${NAMES.map((n) => columnDefinition(n, false)).join(',\n  ')},
  stored_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_events_decision CHECK (decision IN ('allow', 'deny')),
  CONSTRAINT audit_events_pkey PRIMARY KEY (ts, event_id)
) PARTITION BY RANGE (ts);
CREATE INDEX audit_events_sub_ts ON audit_events (sub, ts) WHERE sub IS NOT NULL;
CREATE INDEX audit_events_consumer_ts ON audit_events (consumer, ts) WHERE consumer IS NOT NULL;
CREATE INDEX audit_events_client_ip_ts ON audit_events (client_ip, ts);
CREATE INDEX audit_events_jti_ts ON audit_events (jti, ts) WHERE jti IS NOT NULL;
CREATE INDEX audit_events_request_id ON audit_events (request_id);`;

/** Version 17: the columns trace_id and config_hash, and the index `events --trace-id` reads. */
export const TRACE_COLUMNS_DDL = `
${ADDED_COLUMNS_DDL}
CREATE INDEX IF NOT EXISTS audit_events_trace_id ON audit_events (trace_id) WHERE trace_id IS NOT NULL;`;

/** Every column written when rows move between the two tables, stored_at included. */
export const ALL_COLUMNS = [...NAMES, 'stored_at'].join(', ');
