/**
 * `export`: every event of a range as JSON lines, oldest first, request and security events
 * merged by (ts, event_id), each line tagged with `source`. Read in keyset pages, so memory holds
 * one page per source whatever the range; the writer is awaited on each line (backpressure).
 */
import type { SqlClient } from '../store/sql-client.js';
import type { ExportQuery } from './params.js';
import { compareRows, REQUEST_SELECT, requestItem, SECURITY_SELECT, securityItem, type Item, type RequestRow, type SecurityRow } from './rows.js';

export const EXPORT_PAGE = 1000;

interface Keyed {
  ts_us: string;
  event_id: string;
  item: () => Item;
}

/** The rows of one table in the range, oldest first, fetched a page at a time. */
async function* pages(sql: SqlClient, select: string, table: string, q: ExportQuery, toItem: (row: never) => Item): AsyncGenerator<Keyed> {
  let after: { ts_us: string; event_id: string } | undefined;
  for (;;) {
    const params: unknown[] = [q.since, q.until];
    let where = 'ts >= $1::timestamptz AND ts < $2::timestamptz';
    if (after) where += ` AND (ts, event_id) > ($${params.push(after.ts_us)}::timestamptz, $${params.push(after.event_id)}::uuid)`;
    // Ordered by the table's own columns (the select list's `ts` is text), so an index on (ts, event_id) serves it.
    const { rows } = await sql.query<{ ts_us: string; event_id: string }>(
      `${select} WHERE ${where} ORDER BY ${table}.ts, ${table}.event_id LIMIT ${EXPORT_PAGE}`,
      params,
    );
    for (const row of rows) yield { ts_us: row.ts_us, event_id: row.event_id, item: () => toItem(row as never) };
    if (rows.length < EXPORT_PAGE) return;
    after = rows.at(-1);
  }
}

/** Merges two ascending streams into one. */
async function* merge(a: AsyncGenerator<Keyed>, b: AsyncGenerator<Keyed>): AsyncGenerator<Keyed> {
  let x = await a.next();
  let y = await b.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && compareRows(x.value, y.value) <= 0)) {
      yield x.value as Keyed;
      x = await a.next();
    } else {
      yield y.value;
      y = await b.next();
    }
  }
}

async function* empty(): AsyncGenerator<Keyed> {}

/** Every item of the range, oldest first; `write` resolves when the line may be followed by the next. */
export async function exportEvents(sql: SqlClient, q: ExportQuery, write: (line: string) => Promise<void>, stopped: () => boolean = () => false): Promise<number> {
  const requests = q.kind === 'security' ? empty() : pages(sql, REQUEST_SELECT, 'audit_events', q, requestItem as (row: never) => Item);
  const security = q.kind === 'request' ? empty() : pages(sql, SECURITY_SELECT, 'audit_security_events', q, securityItem as (row: never) => Item);
  let written = 0;
  for await (const keyed of merge(requests, security)) {
    if (stopped()) break;
    await write(`${JSON.stringify(keyed.item())}\n`);
    written += 1;
  }
  return written;
}
