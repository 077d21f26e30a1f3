/**
 * `top --by ip|sub|consumer|route|reason`: the values with the most requests in a range (denied
 * ones with decision=deny), with their allowed and denied counts. Requests without the field
 * (no token: no sub; allowed: no reason) are not counted under a null value.
 */
import { withMinuteCounts } from '../store/minute-rollup.js';
import type { SqlClient, SqlQueries } from '../store/sql-client.js';
import { rawCounts } from './raw-counts.js';
import type { TopQuery } from './params.js';

const COLUMN = { ip: 'client_ip', sub: 'sub', consumer: 'consumer', route: 'route', reason: 'reason' } as const;
const FILTERS = ['sub', 'consumer', 'client_ip', 'jti', 'route'] as const;

export interface TopRow {
  value: string;
  count: number;
  allow: number;
  deny: number;
}

export interface Top {
  by: TopQuery['by'];
  since: string;
  until: string;
  rows: TopRow[];
}

/**
 * By route or reason, filtered at most by route and decision, the counts come from the minute
 * rollup (the cut minutes at the range's ends from the events); any other question reads the events.
 */
export async function top(sql: SqlClient, q: TopQuery): Promise<Top> {
  const column = COLUMN[q.by];
  const filters = FILTERS.filter((key) => q[key] !== undefined);
  const rank = async (tx: SqlQueries, source: string, params: unknown[], param: (value: unknown) => string) => {
    const where = [`${column} IS NOT NULL`, ...filters.map((key) => `${key} = ${param(q[key])}`)];
    if (q.decision !== undefined) where.push(`decision = ${param(q.decision)}`);
    const { rows } = await tx.query<{ value: string; count: number | string; allow: number | string; deny: number | string }>(
      `SELECT ${column} AS value, sum(count) AS count,
         coalesce(sum(count) FILTER (WHERE decision = 'allow'), 0) AS allow, coalesce(sum(count) FILTER (WHERE decision = 'deny'), 0) AS deny
       FROM ${source} AS counted WHERE ${where.join(' AND ')}
       GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${param(q.limit)}`,
      params,
    );
    return rows;
  };
  const rows =
    (column === 'route' || column === 'reason') && filters.every((key) => key === 'route')
      ? await withMinuteCounts(sql, q.since, q.until, rank)
      : await rawCounts(sql, q.since, q.until, ['ts', 'decision', ...new Set([column, ...FILTERS])], rank);
  return { by: q.by, since: q.since, until: q.until, rows: rows.map((r) => ({ value: r.value, count: Number(r.count), allow: Number(r.allow), deny: Number(r.deny) })) };
}
