/**
 * Requests per minute by route, decision and reason: the rollup that answers the whole-traffic
 * timeline and `top --by route|reason` from a few rows a minute instead of every event.
 *
 * It is written by the chain sealer (chain/sealer.ts), in the transaction that seals, under the
 * sealer's lock: one writer at a time, nothing added to the insert path, no row two inserts
 * wait on. It counts every event stored before `rolled_up_to` (a stored_at, the sealed chain's
 * head when the sealer last ran). A query reads the rollup's whole minutes, and from
 * audit_events the events stored since `rolled_up_to` and those of the minutes its range cuts,
 * in one snapshot, so its answer is exact (`withMinuteCounts`).
 *
 * Minutes are aligned to the epoch (date_bin), whatever the session's time zone.
 */
import type { SqlClient, SqlQueries } from './sql-client.js';

const MINUTE_MS = 60_000;
const MINUTE = `date_bin(interval '1 minute', ts, timestamptz '1970-01-01 00:00:00+00')`;

/** The table and its frontier (nothing is rolled up yet: the next sealer run takes every sealed event). */
export const MINUTE_ROLLUP_DDL = `
CREATE TABLE IF NOT EXISTS audit_rollup_minute (
  minute timestamptz NOT NULL,
  route text,
  decision text NOT NULL,
  reason text,
  count bigint NOT NULL,
  CONSTRAINT audit_rollup_minute_key UNIQUE NULLS NOT DISTINCT (minute, route, decision, reason)
);
CREATE TABLE IF NOT EXISTS audit_rollup_state (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  rolled_up_to timestamptz NOT NULL
);
INSERT INTO audit_rollup_state (rolled_up_to) VALUES ('-infinity') ON CONFLICT DO NOTHING;`;

/**
 * Adds the events stored in [rolled_up_to, the sealed chain's head) to the rollup and moves the
 * frontier there; the caller holds the sealer's lock, in its transaction. Resolves the events added.
 */
export async function rollUpSealed(tx: SqlQueries): Promise<number> {
  const { rows } = await tx.query<{ from_ts: string; to_ts: string }>(
    `SELECT s.rolled_up_to::text AS from_ts, c.head::text AS to_ts
     FROM audit_rollup_state s, (SELECT max(bucket_end) AS head FROM audit_chain) c WHERE c.head > s.rolled_up_to FOR UPDATE OF s`,
  );
  const span = rows[0];
  if (!span) return 0;
  // Keys in one order (ORDER BY); a custom plan with the bounds known, so the BRIN on stored_at serves the scan.
  const added = await tx.query<{ n: number }>(
    `WITH counts AS (
       SELECT ${MINUTE} AS minute, route, decision, reason, count(*) AS count FROM audit_events
       WHERE stored_at >= $1::timestamptz AND stored_at < $2::timestamptz GROUP BY 1, 2, 3, 4
     ), added AS (
       INSERT INTO audit_rollup_minute AS r (minute, route, decision, reason, count)
       SELECT minute, route, decision, reason, count FROM counts ORDER BY 1, 2, 3, 4
       ON CONFLICT ON CONSTRAINT audit_rollup_minute_key DO UPDATE SET count = r.count + excluded.count)
     SELECT coalesce(sum(count), 0)::int AS n FROM counts`,
    [span.from_ts, span.to_ts],
  );
  await tx.query('UPDATE audit_rollup_state SET rolled_up_to = $1::timestamptz', [span.to_ts]);
  return added.rows[0]?.n ?? 0;
}

/** Deletes the counts of the minutes before `beforeMs` (their events' partitions were dropped). */
export async function dropMinutesBefore(tx: SqlQueries, beforeMs: number): Promise<void> {
  await tx.query('DELETE FROM audit_rollup_minute WHERE minute < $1', [new Date(beforeMs).toISOString()]);
}

/**
 * Runs `query` with a derived table (ts, route, decision, reason, count) that counts exactly the
 * events of [since, until): the rollup's whole minutes, plus from audit_events the events of
 * those minutes stored after the rollup's frontier and every event of the cut minutes at either
 * end (count 1 each). One REPEATABLE READ transaction, so the frontier and the rollup are read
 * in the same snapshot. `param` of the callback adds a query parameter and returns its placeholder.
 */
export async function withMinuteCounts<T>(
  sql: SqlClient,
  since: string,
  until: string,
  query: (tx: SqlQueries, source: string, params: unknown[], param: (value: unknown) => string) => Promise<T>,
): Promise<T> {
  return sql.transaction(async (tx) => {
    await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const { rows } = await tx.query<{ frontier: string }>('SELECT rolled_up_to::text AS frontier FROM audit_rollup_state');
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    const first = Math.ceil(Date.parse(since) / MINUTE_MS) * MINUTE_MS;
    const last = Math.floor(Date.parse(until) / MINUTE_MS) * MINUTE_MS;
    const [s, u] = [param(since), param(until)];
    const all = `SELECT ts, route, decision, reason, 1 AS count FROM audit_events`;
    let source = `(${all} WHERE ts >= ${s}::timestamptz AND ts < ${u}::timestamptz)`;
    if (first < last) {
      const [f, l, frontier] = [param(new Date(first).toISOString()), param(new Date(last).toISOString()), param(rows[0]?.frontier ?? '-infinity')];
      source = `(SELECT minute AS ts, route, decision, reason, count FROM audit_rollup_minute WHERE minute >= ${f}::timestamptz AND minute < ${l}::timestamptz
        UNION ALL ${all} WHERE ts >= ${f}::timestamptz AND ts < ${l}::timestamptz AND stored_at >= ${frontier}::timestamptz
        UNION ALL ${all} WHERE (ts >= ${s}::timestamptz AND ts < ${f}::timestamptz) OR (ts >= ${l}::timestamptz AND ts < ${u}::timestamptz))`;
    }
    return query(tx, source, params, param);
  });
}
