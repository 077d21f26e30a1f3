/**
 * The events of [since, until) as a derived table of `columns` and `count` (1 each), for the
 * questions the minute rollup cannot answer (filtered by subject, or ranked by one): the
 * same query shape as withMinuteCounts (store/minute-rollup.ts), read from audit_events alone.
 */
import type { SqlClient, SqlQueries } from '../store/sql-client.js';

export function rawCounts<T>(
  sql: SqlClient,
  since: string,
  until: string,
  columns: readonly string[],
  query: (tx: SqlQueries, source: string, params: unknown[], param: (value: unknown) => string) => Promise<T>,
): Promise<T> {
  const params: unknown[] = [];
  const param = (value: unknown): string => `$${params.push(value)}`;
  const source = `(SELECT ${columns.join(', ')}, 1 AS count FROM audit_events WHERE ts >= ${param(since)}::timestamptz AND ts < ${param(until)}::timestamptz)`;
  return query(sql, source, params, param);
}
