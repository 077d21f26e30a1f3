/**
 * `timeline`: request counts per time bucket, split by decision and reason. Buckets are aligned
 * to multiples of their size since the epoch (a 1m bucket starts on the minute), every bucket of
 * the range is listed, empty ones with zeros, oldest first.
 */
import { withMinuteCounts } from '../store/minute-rollup.js';
import type { SqlClient, SqlQueries } from '../store/sql-client.js';
import { rawCounts } from './raw-counts.js';
import type { TimelineQuery } from './params.js';

export interface TimelineBucket {
  /** Start of the bucket, ISO. */
  start: string;
  allow: number;
  deny: number;
  /** Counts by decision and reason (reason null: an allowed request without one), largest first. */
  counts: { decision: 'allow' | 'deny'; reason: string | null; count: number }[];
}

export interface Timeline {
  since: string;
  until: string;
  bucket_s: number;
  buckets: TimelineBucket[];
}

const SUBJECTS = ['sub', 'consumer', 'client_ip', 'jti', 'route'] as const;

/**
 * Whole-minute buckets filtered at most by route are counted from the minute rollup (the cut
 * minutes at the range's ends from the events); any other question reads the events.
 */
export async function timeline(sql: SqlClient, q: TimelineQuery): Promise<Timeline> {
  const filters = SUBJECTS.filter((key) => q[key] !== undefined);
  const count = async (tx: SqlQueries, source: string, params: unknown[], param: (value: unknown) => string) => {
    const where = filters.map((key) => `${key} = ${param(q[key])}`);
    const { rows } = await tx.query<{ bucket: number | string; decision: 'allow' | 'deny'; reason: string | null; count: number | string }>(
      // date_bin on the timestamp is about twice as fast as epoch arithmetic on numeric (1M rows: 1.4 s against 3.1 s).
      `SELECT extract(epoch FROM bucket)::bigint AS bucket, decision, reason, count
       FROM (SELECT date_bin(make_interval(secs => ${param(q.bucket)}::int), ts, timestamptz '1970-01-01 00:00:00+00') AS bucket, decision, reason, sum(count) AS count
             FROM ${source} AS counted ${where.length ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY 1, 2, 3) AS binned`,
      params,
    );
    return rows;
  };
  const rows =
    q.bucket % 60 === 0 && filters.every((key) => key === 'route')
      ? await withMinuteCounts(sql, q.since, q.until, count)
      : await rawCounts(sql, q.since, q.until, ['ts', 'decision', 'reason', ...SUBJECTS], count);
  const bucketMs = q.bucket * 1000;
  const first = Math.floor(Date.parse(q.since) / bucketMs) * bucketMs;
  const byStart = new Map<number, TimelineBucket>();
  for (let start = first; start < Date.parse(q.until); start += bucketMs) {
    byStart.set(start, { start: new Date(start).toISOString(), allow: 0, deny: 0, counts: [] });
  }
  for (const row of rows) {
    const bucket = byStart.get(Number(row.bucket) * 1000);
    if (!bucket) continue;
    const count = Number(row.count);
    bucket[row.decision] += count;
    bucket.counts.push({ decision: row.decision, reason: row.reason, count });
  }
  for (const bucket of byStart.values()) {
    bucket.counts.sort((a, b) => b.count - a.count || `${a.decision}${a.reason}`.localeCompare(`${b.decision}${b.reason}`));
  }
  return { since: q.since, until: q.until, bucket_s: q.bucket, buckets: [...byStart.values()] };
}
