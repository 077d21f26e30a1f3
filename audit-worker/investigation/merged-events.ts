/**
 * GET /v1/events with kind=security or kind=all: security events alone, or merged with the
 * request events, newest first by (ts, event_id), with the same keyset cursor as request pages.
 * The subject filters reach security events through their subject (client_ip → ip, consumer,
 * jti, sub → a consumer `<issuer>:<sub>`); a filter only requests have (route, decision, reason,
 * status, path_prefix, request_id) leaves no security event.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { EventFilter } from '../event-filter.js';
import { encodeCursor } from '../store/cursor.js';
import type { EventStore } from '../store/event-store.js';
import type { SqlClient } from '../store/sql-client.js';
import { compareRows, securityItem, SECURITY_SELECT, type Item, type SecurityRow } from './rows.js';

export interface MergedPage {
  events: Item[];
  next_cursor: string | null;
}

const REQUEST_ONLY = ['route', 'decision', 'reason', 'status', 'path_prefix', 'request_id', 'trace_id'] as const;

/** The microsecond time the cursor holds, from an event's ts (written with milliseconds when exact). */
const tsUs = (ts: string): string => ts.replace(/(\.\d{3})Z$/, '$1000Z').replace(/:(\d{2})Z$/, ':$1.000000Z');

/** Security events matching the filter, newest first, at most `limit` (none when a request-only filter is set). */
export async function securityPage(sql: SqlClient, filter: EventFilter, limit: number): Promise<SecurityRow[]> {
  if (REQUEST_ONLY.some((key) => filter[key] !== undefined)) return [];
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => `$${params.push(value)}`;
  if (filter.client_ip !== undefined) where.push(`subject_kind = 'ip' AND subject = ${param(filter.client_ip)}`);
  if (filter.consumer !== undefined) where.push(`subject_kind = 'consumer' AND subject = ${param(filter.consumer)}`);
  if (filter.jti !== undefined) where.push(`subject_kind = 'jti' AND subject = ${param(filter.jti)}`);
  if (filter.sub !== undefined) where.push(`subject_kind = 'consumer' AND right(subject, ${param(filter.sub.length + 1)}) = ${param(`:${filter.sub}`)}`);
  if (filter.since !== undefined) where.push(`ts >= ${param(filter.since)}::timestamptz`);
  if (filter.until !== undefined) where.push(`ts < ${param(filter.until)}::timestamptz`);
  if (filter.cursor !== undefined) {
    where.push(`(ts, event_id) < (${param(filter.cursor.ts)}::timestamptz, ${param(filter.cursor.event_id)}::uuid)`);
  }
  const text = `${SECURITY_SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY audit_security_events.ts DESC, audit_security_events.event_id DESC LIMIT ${param(limit)}`;
  return (await sql.query<SecurityRow>(text, params)).rows;
}

export async function mergedEvents(sql: SqlClient, store: Pick<EventStore, 'query'>, filter: EventFilter): Promise<MergedPage> {
  const security = await securityPage(sql, filter, filter.limit + 1);
  const requests: (AuditEvent & { ts_us: string })[] = [];
  let moreRequests = false;
  if (filter.kind === 'all') {
    const page = await store.query(filter);
    requests.push(...page.events.map((e) => ({ ...e, ts_us: tsUs(e.ts) })));
    moreRequests = page.next_cursor !== null;
  }
  const merged = [
    ...requests.map((row) => ({ row, item: { source: 'request' as const, ...withoutTsUs(row) } as Item })),
    ...security.map((row) => ({ row, item: securityItem(row) as Item })),
  ].sort((a, b) => compareRows(b.row, a.row));
  const page = merged.slice(0, filter.limit);
  const last = page.at(-1);
  const more = moreRequests || merged.length > filter.limit;
  return {
    events: page.map((m) => m.item),
    next_cursor: more && last ? encodeCursor({ ts: last.row.ts_us, event_id: last.row.event_id }) : null,
  };
}

function withoutTsUs<T extends { ts_us: string }>(row: T): Omit<T, 'ts_us'> {
  const { ts_us: _, ...rest } = row;
  return rest;
}
