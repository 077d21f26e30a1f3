/**
 * The daily partitions of audit_events: one table per UTC day, audit_events_pYYYYMMDD, holding
 * [day 00:00Z, next day 00:00Z). A partition is created before the first insert that needs it
 * (ahead of time for today and the next days, on demand for a late or early event), never by a
 * DEFAULT partition: rows there would have to be moved out before the day's partition could be
 * made. Creating is CREATE TABLE + ATTACH PARTITION, which locks the parent table only in SHARE
 * UPDATE EXCLUSIVE mode, so inserts and queries go on meanwhile (CREATE TABLE ... PARTITION OF
 * would wait for every running query, and hold every insert behind it). All DDL runs under the
 * advisory lock every worker's migrations take, so workers never race on one day.
 */
import { dropMinutesBefore } from './minute-rollup.js';
import { DDL_LOCK_KEY, type SqlClient, type SqlQueries } from './sql-client.js';

export const DAY_MS = 86_400_000;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const PARTITION_NAME = /^audit_events_p(\d{4})(\d{2})(\d{2})$/;

/** The UTC day (YYYY-MM-DD) of an epoch millisecond count. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The UTC day of an ISO time; the date itself when written in UTC (`...Z`, as gateways write it), parsed otherwise. */
export function tsDay(ts: string): string {
  return ts.endsWith('Z') ? ts.slice(0, 10) : utcDay(Date.parse(ts));
}

/** The first millisecond of a UTC day. */
export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

export function partitionName(day: string): string {
  if (!DAY.test(day)) throw new Error(`not a day: ${JSON.stringify(day)}`);
  return `audit_events_p${day.replaceAll('-', '')}`;
}

/** The day a partition of this name holds, or undefined for a table not named by partitionName. */
export function dayOfPartition(name: string): string | undefined {
  const m = PARTITION_NAME.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

/** Creates the partition of `day` unless it exists; the caller holds DDL_LOCK_KEY. */
export async function createPartition(tx: SqlQueries, day: string): Promise<boolean> {
  const name = partitionName(day);
  const { rows } = await tx.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [name]);
  if (rows[0]?.found) return false;
  const from = `${day}T00:00:00Z`;
  const to = `${utcDay(dayStart(day) + DAY_MS)}T00:00:00Z`;
  // Names and bounds come from partitionName/utcDay (digits and dashes only), never from input.
  await tx.exec(`
    CREATE TABLE ${name} (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
    ALTER TABLE audit_events ATTACH PARTITION ${name} FOR VALUES FROM ('${from}') TO ('${to}');`);
  return true;
}

/** The days that have a partition, oldest first. */
export async function partitionDays(sql: SqlQueries): Promise<string[]> {
  const { rows } = await sql.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('audit_events')`,
  );
  return rows
    .map((r) => dayOfPartition(r.name))
    .filter((d): d is string => d !== undefined)
    .sort();
}

/**
 * The partitions of one store, with the days known to exist remembered so an insert checks
 * them without a statement; the first batch of a new day pays one transaction.
 */
export class Partitions {
  private readonly known = new Set<string>();

  constructor(private readonly sql: SqlClient) {}

  /** Makes sure every day given has its partition; resolves the days created. */
  async ensure(days: Iterable<string>): Promise<string[]> {
    const missing = [...new Set(days)].filter((d) => !this.known.has(d)).sort();
    if (missing.length === 0) return [];
    const created = await this.sql.transaction(async (tx) => {
      await tx.exec(`SELECT pg_advisory_xact_lock(${DDL_LOCK_KEY})`);
      const made: string[] = [];
      for (const day of missing) if (await createPartition(tx, day)) made.push(day);
      return made;
    });
    for (const day of missing) this.known.add(day);
    return created;
  }

  /** Forgets what it knew, e.g. after an insert found a day gone (another worker's retention). */
  forget(): void {
    this.known.clear();
  }

  /**
   * Drops every partition whose whole day ended at or before `cutoffMs`, and resolves their
   * days. Whole tables only: no event row is ever deleted (the minute rollup's rows of those
   * days are, in the same transaction, so the two never disagree). DROP locks the parent table exclusively,
   * so it waits at most `lockTimeoutMs` behind a long query (inserts queue behind a waiting
   * DROP) and otherwise throws; the next run tries again.
   */
  async dropEndedBy(cutoffMs: number, lockTimeoutMs = 3000): Promise<string[]> {
    const dropped = await this.sql.transaction(async (tx) => {
      await tx.exec(`SELECT pg_advisory_xact_lock(${DDL_LOCK_KEY}); SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`);
      const old = (await partitionDays(tx)).filter((day) => dayStart(day) + DAY_MS <= cutoffMs);
      for (const day of old) await tx.exec(`DROP TABLE ${partitionName(day)}`);
      // The rollup's minutes of every day that ended by the cutoff (dropped now or by an earlier run).
      await dropMinutesBefore(tx, Math.floor(cutoffMs / DAY_MS) * DAY_MS);
      return old;
    });
    for (const day of dropped) this.known.delete(day);
    return dropped;
  }
}
