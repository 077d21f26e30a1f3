/**
 * The times the query side accepts: years 0001 to 9999 in UTC. PostgreSQL refuses year 0 and
 * JavaScript's toISOString writes years past 9999 (or before 0) in a form nobody reads back,
 * so a time outside this range is a caller's mistake, answered 400, never a 500.
 */
export const MIN_TIME_MS = Date.parse('0001-01-01T00:00:00.000Z');
export const MAX_TIME_MS = Date.parse('9999-12-31T23:59:59.999Z');
export const TIME_RANGE_MESSAGE = 'must be between 0001-01-01 and 9999-12-31 (UTC)';

/** True for a finite epoch millisecond count within years 0001-9999 UTC (NaN is not). */
export function inTimeRange(ms: number): boolean {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;
}
