/**
 * `top --by ip|sub|consumer|route|reason`: the values with the most requests in a range (denied
 * ones with decision=deny), with their allowed and denied counts. Requests without the field
 * (no token: no sub; allowed: no reason) are not counted under a null value.
 */
import type { SqlClient } from '../store/sql-client.js';
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

export async function top(sql: SqlClient, q: TopQuery): Promise<Top> {
  const column = COLUMN[q.by];
  const params: unknown[] = [q.since, q.until];
  const where = ['ts >= $1::timestamptz', 'ts < $2::timestamptz', `${column} IS NOT NULL`];
  if (q.decision !== undefined) where.push(`decision = $${params.push(q.decision)}`);
  for (const key of FILTERS) {
    const value = q[key];
    if (value !== undefined) where.push(`${key} = $${params.push(value)}`);
  }
  const { rows } = await sql.query<{ value: string; count: number | string; allow: number | string; deny: number | string }>(
    `SELECT ${column} AS value, count(*) AS count,
       count(*) FILTER (WHERE decision = 'allow') AS allow, count(*) FILTER (WHERE decision = 'deny') AS deny
     FROM audit_events WHERE ${where.join(' AND ')}
     GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $${params.push(q.limit)}`,
    params,
  );
  return { by: q.by, since: q.since, until: q.until, rows: rows.map((r) => ({ value: r.value, count: Number(r.count), allow: Number(r.allow), deny: Number(r.deny) })) };
}
