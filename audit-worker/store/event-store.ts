/**
 * Audit events in SQL: idempotent batch insert (the queue redelivers; `(ts, event_id)` decides)
 * into daily partitions (partitions.ts) and keyset-paginated queries, newest first.
 * Parameterized SQL only.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { EventFilter } from '../event-filter.js';
import { COLUMNS, NAMES } from './audit-events-table.js';
import { encodeCursor } from './cursor.js';
import { tsRefusal, type TsRefusal } from './kept-window.js';
import { Partitions, tsDay, utcDay } from './partitions.js';
import { runMigrations } from './run-migrations.js';
import type { SqlClient } from './sql-client.js';
import { sqlStateOf } from './sql-error.js';

const UTC_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** Days made ahead of need at start and by each maintenance run: today and the next two. */
export const DAYS_AHEAD = 2;

export interface EventStoreOptions {
  /** audit.retention_days: events older are set aside, not stored (kept-window.ts); unset, no limit. */
  retentionDays?: number;
  /** The clock, in epoch ms; tests inject one. */
  now?: () => number;
}

// One statement per batch: the batch travels as one jsonb parameter; conflicts are skipped.
const INSERT = `
WITH ins AS (
  INSERT INTO audit_events (${NAMES.join(', ')})
  SELECT ${NAMES.join(', ')}
  FROM jsonb_to_recordset($1::jsonb) AS x(${NAMES.map((n) => `${n} ${COLUMNS[n]}`).join(', ')})
  ON CONFLICT (ts, event_id) DO NOTHING
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

/** The times as text (microseconds, UTC): pg would make them Dates, which keep milliseconds only. */
const TIMES = new Set<string>(['ts', 'token_iat']);
/** Each column as the event has it: times as above, the trace id (a uuid column) as 32 hex characters. */
const selected = (n: string): string => (TIMES.has(n) ? `to_char(${n} AT TIME ZONE 'UTC', ${UTC_US}) AS ${n}` : n === 'trace_id' ? `replace(${n}::text, '-', '') AS ${n}` : n);
export const SELECT_COLUMNS = NAMES.map(selected).join(', ');

/** Equality filters: query parameter → column. */
const EQUALS = ['sub', 'consumer', 'client_ip', 'route', 'decision', 'reason', 'request_id', 'trace_id', 'jti', 'status'] as const;

/** A LIKE pattern matching text that starts with `prefix`, its wildcards taken literally. */
export const likePrefix = (prefix: string): string => `${prefix.replace(/[\\%_]/g, '\\$&')}%`;

export type Row = Omit<AuditEvent, 'latency_ms' | 'bytes_out' | 'bytes_in'> & { latency_ms: number | string; bytes_out: number | string | bigint; bytes_in: number | string | bigint | null };

export interface EventPage {
  events: AuditEvent[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

/** Microsecond text from the database → the ISO form the gateway writes (milliseconds when exact). */
function isoTs(us: string): string {
  return us.replace(/(\.\d{3})000Z$/, '$1Z');
}

export function toEvent(row: Row): AuditEvent {
  // pg returns bigint as a string (PGlite as a number), so both are converted here.
  const event = {} as Record<string, unknown>;
  for (const n of NAMES) event[n] = row[n];
  event.ts = isoTs(row.ts);
  event.token_iat = row.token_iat === null ? null : isoTs(row.token_iat);
  event.latency_ms = Number(row.latency_ms);
  event.bytes_out = Number(row.bytes_out);
  event.bytes_in = row.bytes_in === null ? null : Number(row.bytes_in);
  return event as AuditEvent;
}

/** An insert refused for a row no partition holds: check_violation naming no constraint (a CHECK constraint's names one). */
function isNoPartition(err: unknown): boolean {
  return sqlStateOf(err) === '23514' && !(err as { constraint?: unknown }).constraint;
}

export class EventStore {
  readonly partitions: Partitions;
  readonly retentionDays: number | undefined;
  private readonly now: () => number;

  constructor(private readonly sql: SqlClient, options: EventStoreOptions = {}) {
    this.partitions = new Partitions(sql);
    this.retentionDays = options.retentionDays;
    this.now = options.now ?? Date.now;
  }

  /** Applies the migrations not yet applied (run-migrations.ts), then makes today's partitions and the next days'. */
  async migrate(): Promise<void> {
    await runMigrations(this.sql);
    await this.ensureDaysAhead();
  }

  /** Makes the partitions of today and DAYS_AHEAD days after; resolves the days created. */
  ensureDaysAhead(): Promise<string[]> {
    const today = Date.parse(`${utcDay(this.now())}T00:00:00Z`);
    return this.partitions.ensure(Array.from({ length: DAYS_AHEAD + 1 }, (_, i) => utcDay(today + i * 86_400_000)));
  }

  /** Why this store will not keep the event (its time out of the kept window), or undefined. */
  refusal(event: Pick<AuditEvent, 'ts'>): TsRefusal | undefined {
    return tsRefusal(event.ts, this.now(), this.retentionDays);
  }

  /**
   * Stores a batch in one statement, its days' partitions made first if missing; returns how many
   * events were new (the rest were already stored). One event the database refuses fails the
   * whole statement: see insertIsolating.
   */
  async insert(events: readonly AuditEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const days = new Set(events.map((e) => tsDay(e.ts)));
    await this.partitions.ensure(days);
    try {
      return await this.insertRows(events);
    } catch (err) {
      // A day this store knew was dropped since (another worker's retention): made again, once.
      if (!isNoPartition(err)) throw err;
      this.partitions.forget();
      await this.partitions.ensure(days);
      return this.insertRows(events);
    }
  }

  private async insertRows(events: readonly AuditEvent[]): Promise<number> {
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
    if (filter.path_prefix !== undefined) where.push(`path LIKE ${param(likePrefix(filter.path_prefix))}`);
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
