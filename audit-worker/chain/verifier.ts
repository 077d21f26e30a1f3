/**
 * Walks the hash chain from a time on: recomputes each link's digests from the stored rows (with
 * the same SQL as the sealer) and each link's hash (in Node), and reports the first broken link,
 * or "intact" with the counts verified. Read-only; safe to run while workers store and seal.
 */
import type { SqlClient } from '../store/sql-client.js';
import { eventsDigestQuery, securityDigestQuery } from './chain-sql.js';
import { GENESIS_HASH, linkHash } from './link-hash.js';

export type Breakage =
  /** The link's own fields no longer give its hash: the chain table was edited. */
  | 'link_mismatch'
  /** prev_hash is not the previous link's hash, or a link is missing: links removed or reordered. */
  | 'prev_mismatch'
  /** The link does not start where the previous one ended. */
  | 'gap'
  /** More or fewer rows than sealed: rows deleted or inserted. */
  | 'count_mismatch'
  /** As many rows as sealed, other contents: a row edited (or one deleted and one inserted). */
  | 'digest_mismatch'
  /** Rows stored before the chain's first link, which sealed from the oldest row: inserted since. */
  | 'rows_before_chain'
  /** The link named by `anchor` is missing or has another hash than the one published: the chain was rewritten. */
  | 'anchor_mismatch';

export interface BrokenLink {
  what: Breakage;
  /** The link at fault (for rows_before_chain, the first link). */
  seq: number;
  bucket_start: string;
  bucket_end: string;
  /** The table whose rows differ (count_mismatch, digest_mismatch, rows_before_chain). */
  table?: 'audit_events' | 'audit_security_events';
  sealed_count?: number;
  stored_count?: number;
}

export interface VerifyReport {
  status: 'intact' | 'broken';
  /** One line an incident report can quote. */
  message: string;
  /** Start of the first link walked and end of the last one (null: no link at or after since). */
  from: string | null;
  to: string | null;
  links_verified: number;
  events_verified: number;
  security_events_verified: number;
  /**
   * Links holding audit events older than the retention horizon (the UTC midnight before the
   * oldest stored event): retention dropped some of their rows, so only their link hash is checked.
   */
  links_beyond_retention: number;
  retention_horizon: string | null;
  /** Rows stored after the last link's end (events and security events). */
  not_yet_sealed: number;
  /** The last link walked: compare its hash with one published earlier (the sealer logs each head). */
  head: { seq: number; hash: string } | null;
  broken?: BrokenLink;
}

export interface VerifyOptions {
  /** ISO time: walk from the first link starting at or after it; unset: from the first link. */
  since?: string;
  /** A head published earlier (the sealer's log): link `seq` must still have this hash. */
  anchor?: { seq: number; hash: string };
  /**
   * Links per query (default 20). Small on purpose: a page's cost estimate grows with its links,
   * and past jit_above_cost PostgreSQL spent ~0.7 s compiling a 100-link page that ran in 0.6 s.
   */
  pageSize?: number;
}

interface LinkRow {
  seq: string;
  start_us: string;
  end_us: string;
  count: string;
  min_ts_us: string | null;
  digest: string;
  security_count: string;
  security_digest: string;
  prev_hash: string;
  hash: string;
  ev_n: string;
  ev_digest: string;
  sec_n: string;
  sec_digest: string;
}

const us = (t: string): string => `(extract(epoch FROM ${t}) * 1000000)::bigint::text`;
const LINK_COLUMNS = `c.seq::text AS seq, ${us('c.bucket_start')} AS start_us, ${us('c.bucket_end')} AS end_us, c.count::text AS count,
  ${us('c.min_ts')} AS min_ts_us, encode(c.digest, 'hex') AS digest, c.security_count::text AS security_count,
  encode(c.security_digest, 'hex') AS security_digest, encode(c.prev_hash, 'hex') AS prev_hash, encode(c.hash, 'hex') AS hash`;

// Each link's rows recomputed beside it (a BRIN range scan per link), a page of links per query.
const PAGE = `
SELECT ${LINK_COLUMNS}, ev.n::text AS ev_n, encode(ev.digest, 'hex') AS ev_digest, sec.n::text AS sec_n, encode(sec.digest, 'hex') AS sec_digest
FROM audit_chain c
CROSS JOIN LATERAL (${eventsDigestQuery('c.bucket_start', 'c.bucket_end', 'c.row_version')}) ev
CROSS JOIN LATERAL (${securityDigestQuery('c.bucket_start', 'c.bucket_end')}) sec
WHERE c.seq >= $1 ORDER BY c.seq LIMIT $2`;

const iso = (micros: string | bigint): string => new Date(Number(BigInt(micros) / 1000n)).toISOString();

const firstLink = (since: string | undefined) =>
  since === undefined
    ? { sql: 'SELECT seq::text AS seq FROM audit_chain ORDER BY seq LIMIT 1', params: [] }
    : { sql: 'SELECT seq::text AS seq FROM audit_chain WHERE bucket_start >= $1::timestamptz ORDER BY seq LIMIT 1', params: [since] };

function describeBreak(b: BrokenLink): string {
  const where = `link #${b.seq} [${b.bucket_start}, ${b.bucket_end})`;
  switch (b.what) {
    case 'link_mismatch':
      return `broken at ${where}: link mismatch, its fields no longer give its hash (the chain table was edited)`;
    case 'prev_mismatch':
      return `broken at ${where}: link mismatch, its prev_hash is not the previous link's hash (links edited, removed or reordered)`;
    case 'gap':
      return `broken at ${where}: gap, it does not start where the previous link ended (links removed or edited)`;
    case 'count_mismatch': {
      const change = (b.stored_count ?? 0) > (b.sealed_count ?? 0) ? 'rows inserted' : 'rows deleted';
      return `broken at ${where}: count mismatch in ${b.table}, sealed ${b.sealed_count} rows, ${b.stored_count} stored now (${change})`;
    }
    case 'digest_mismatch':
      return `broken at ${where}: digest mismatch in ${b.table}, ${b.stored_count} rows as sealed but other contents (a row edited, or deleted and another inserted)`;
    case 'rows_before_chain':
      return `broken before ${where}: ${b.stored_count} rows of ${b.table} stored before the chain's first link (inserted after sealing)`;
    case 'anchor_mismatch':
      return b.bucket_start === ''
        ? `broken at link #${b.seq}: anchor mismatch, no such link (the chain was cut or rewritten)`
        : `broken at ${where}: anchor mismatch, its hash is not the one published (the chain was rewritten)`;
  }
}

export async function verifyChain(sql: SqlClient, options: VerifyOptions = {}): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 20;
  // Retention drops whole UTC days of audit events by ts: a link with an event older than the
  // oldest day still stored has lost rows to it. No event left: every non-empty link has.
  const { rows: horizonRows } = await sql.query<{ horizon_us: string | null }>(
    `SELECT ${us("(date_trunc('day', min(ts) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')")} AS horizon_us FROM audit_events`,
  );
  const horizonUs = horizonRows[0]?.horizon_us ?? null;
  const report: VerifyReport = {
    status: 'intact', message: '', from: null, to: null, links_verified: 0, events_verified: 0, security_events_verified: 0,
    links_beyond_retention: 0, retention_horizon: horizonUs === null ? null : iso(horizonUs), not_yet_sealed: 0, head: null,
  };
  const first = firstLink(options.since);
  const startSeq = (await sql.query<{ seq: string }>(first.sql, first.params)).rows[0]?.seq;

  const breakAt = (broken: BrokenLink): VerifyReport => {
    report.status = 'broken';
    report.broken = broken;
    report.message = describeBreak(broken);
    return report;
  };

  let prev: { seq: bigint; hash: Buffer; endUs: bigint } | null = null;
  if (startSeq !== undefined) {
    const { rows } = await sql.query<{ seq: string; hash: string; end_us: string }>(
      `SELECT seq::text AS seq, encode(hash, 'hex') AS hash, ${us('bucket_end')} AS end_us FROM audit_chain WHERE seq < $1 ORDER BY seq DESC LIMIT 1`,
      [startSeq],
    );
    const before = rows[0];
    if (before) prev = { seq: BigInt(before.seq), hash: Buffer.from(before.hash, 'hex'), endUs: BigInt(before.end_us) };
  }

  let next = startSeq;
  while (next !== undefined) {
    const { rows } = await sql.query<LinkRow>(PAGE, [next, pageSize]);
    for (const row of rows) {
      const seq = BigInt(row.seq);
      const here = { seq: Number(seq), bucket_start: iso(row.start_us), bucket_end: iso(row.end_us) };
      if (report.from === null) {
        report.from = here.bucket_start;
        // Walking from the very first link: it must be seq 1 and nothing may be stored before it.
        if (prev === null && seq !== 1n) return breakAt({ what: 'prev_mismatch', ...here });
        if (prev === null) {
          const early = await countBefore(sql, here.bucket_start);
          if (early) return breakAt({ what: 'rows_before_chain', ...here, ...early });
        }
      }
      const prevHash = Buffer.from(row.prev_hash, 'hex');
      const expectedPrev = prev?.hash ?? GENESIS_HASH;
      if (prev !== null && seq !== prev.seq + 1n) return breakAt({ what: 'prev_mismatch', ...here });
      if (!prevHash.equals(expectedPrev)) return breakAt({ what: 'prev_mismatch', ...here });
      if (prev !== null && BigInt(row.start_us) !== prev.endUs) return breakAt({ what: 'gap', ...here });
      const hash = Buffer.from(row.hash, 'hex');
      const recomputed = linkHash({
        prevHash,
        startUs: BigInt(row.start_us),
        endUs: BigInt(row.end_us),
        count: BigInt(row.count),
        minTsUs: BigInt(row.min_ts_us ?? 0),
        digest: Buffer.from(row.digest, 'hex'),
        securityCount: BigInt(row.security_count),
        securityDigest: Buffer.from(row.security_digest, 'hex'),
      });
      if (!recomputed.equals(hash)) return breakAt({ what: 'link_mismatch', ...here });
      if (options.anchor && options.anchor.seq === here.seq && options.anchor.hash !== row.hash) return breakAt({ what: 'anchor_mismatch', ...here });

      const beyondRetention = row.min_ts_us !== null && (horizonUs === null || BigInt(row.min_ts_us) < BigInt(horizonUs));
      if (beyondRetention) {
        // Retention only removes: more rows than sealed is an insertion, however old the link.
        if (BigInt(row.ev_n) > BigInt(row.count)) {
          return breakAt({ what: 'count_mismatch', ...here, table: 'audit_events', sealed_count: Number(row.count), stored_count: Number(row.ev_n) });
        }
        report.links_beyond_retention += 1;
      } else {
        const mismatch = rowsMismatch('audit_events', row.count, row.digest, row.ev_n, row.ev_digest);
        if (mismatch) return breakAt({ ...mismatch, ...here });
        report.events_verified += Number(row.count);
      }
      const secMismatch = rowsMismatch('audit_security_events', row.security_count, row.security_digest, row.sec_n, row.sec_digest);
      if (secMismatch) return breakAt({ ...secMismatch, ...here });
      report.security_events_verified += Number(row.security_count);

      report.links_verified += 1;
      report.to = here.bucket_end;
      report.head = { seq: here.seq, hash: row.hash };
      prev = { seq, hash, endUs: BigInt(row.end_us) };
    }
    next = rows.length === pageSize && prev ? String(prev.seq + 1n) : undefined;
  }

  // An anchor the walk did not reach (before since, or past the head): its stored hash at least.
  const anchor = options.anchor;
  if (anchor && (report.head === null || anchor.seq > report.head.seq || (startSeq !== undefined && anchor.seq < Number(startSeq)))) {
    const { rows } = await sql.query<{ hash: string; start_us: string; end_us: string }>(
      `SELECT encode(hash, 'hex') AS hash, ${us('bucket_start')} AS start_us, ${us('bucket_end')} AS end_us FROM audit_chain WHERE seq = $1`,
      [anchor.seq],
    );
    const link = rows[0];
    if (!link) return breakAt({ what: 'anchor_mismatch', seq: anchor.seq, bucket_start: '', bucket_end: '' });
    if (link.hash !== anchor.hash) return breakAt({ what: 'anchor_mismatch', seq: anchor.seq, bucket_start: iso(link.start_us), bucket_end: iso(link.end_us) });
  }
  report.not_yet_sealed = await countFrom(sql, prev === null ? null : iso(prev.endUs));
  report.message = intactMessage(report, options.since);
  return report;
}

function rowsMismatch(table: BrokenLink['table'] & string, sealedN: string, sealedDigest: string, storedN: string, storedDigest: string): Omit<BrokenLink, 'seq' | 'bucket_start' | 'bucket_end'> | null {
  const counts = { table, sealed_count: Number(sealedN), stored_count: Number(storedN) };
  if (sealedN !== storedN) return { what: 'count_mismatch', ...counts };
  if (sealedDigest !== storedDigest) return { what: 'digest_mismatch', ...counts };
  return null;
}

async function countBefore(sql: SqlClient, start: string): Promise<Pick<BrokenLink, 'table' | 'stored_count'> | null> {
  for (const table of ['audit_events', 'audit_security_events'] as const) {
    const { rows } = await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE stored_at < $1::timestamptz`, [start]);
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) return { table, stored_count: n };
  }
  return null;
}

/** Rows stored at or after `from` in both tables (every row when nothing is sealed yet). */
async function countFrom(sql: SqlClient, from: string | null): Promise<number> {
  const where = from === null ? '' : ' WHERE stored_at >= $1::timestamptz';
  const params = from === null ? [] : [from];
  const { rows } = await sql.query<{ n: string }>(
    `SELECT ((SELECT count(*) FROM audit_events${where}) + (SELECT count(*) FROM audit_security_events${where}))::text AS n`,
    params,
  );
  return Number(rows[0]?.n ?? 0);
}

function intactMessage(r: VerifyReport, since: string | undefined): string {
  if (r.links_verified === 0) {
    return `intact: no sealed link ${since === undefined ? 'yet' : `at or after ${since}`}; not yet sealed: ${r.not_yet_sealed}`;
  }
  const parts = [
    `intact: ${r.events_verified} events and ${r.security_events_verified} security events in ${r.links_verified} links verified from ${r.from} to ${r.to}`,
  ];
  if (r.links_beyond_retention > 0) {
    parts.push(`${r.links_beyond_retention} links beyond retention (events before ${r.retention_horizon ?? 'the oldest stored'}: link hashes checked, rows not)`);
  }
  parts.push(`not yet sealed: ${r.not_yet_sealed}`, `head #${r.head?.seq} ${r.head?.hash}`);
  return parts.join('; ');
}
