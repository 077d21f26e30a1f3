/**
 * The hash chain over the audit store, in SQL: the table `audit_chain`, the canonical digest of
 * the rows stored in a range of `stored_at`, and the sealing function. The sealer (sealer.ts)
 * calls the function; the verifier (verifier.ts) recomputes the digests with the same SQL text
 * (not the stored function, which a DBA could replace) and the links in Node (link-hash.ts).
 *
 * A link covers [bucket_start, bucket_end) of `stored_at` (the database's clock) in both
 * append-only tables, audit_events and audit_security_events; links are contiguous (each starts
 * where the previous ended), so every stored row belongs to exactly one link.
 */

/** Serializes the sealers of several workers (pg_try_advisory_xact_lock). */
export const CHAIN_LOCK_KEY = 7_311_417;

/**
 * The canonical row serializations, by version: every column, in this order, in PostgreSQL's
 * binary form (record_send: the column count, then each column's type oid, length and bytes).
 * Lengths make it unambiguous; times are integers of microseconds and the double its IEEE bytes,
 * so nothing depends on TimeZone, DateStyle or extra_float_digits; jsonb is sent as its
 * canonical text (keys sorted). Text is sent in the client encoding: every client of the store
 * (pg, PGlite) uses UTF8, and the sealing function sets it. Listed here, not taken from the
 * table, so a column added later does not change the digest of old links: a column added is a
 * new version, which the links sealed from then on record (audit_chain.row_version), and the
 * verifier serializes each link's rows with its own version. Measured against json_build_array
 * of the same columns: 7.5 → 5 µs a row.
 */
const EVENT_COLUMNS_V1 = [
  'event_id', 'ts', 'request_id', 'gateway_id', 'route', 'method', 'path', 'status', 'decision', 'reason', 'detail', 'sub',
  'consumer', 'jti', 'client_ip', 'user_agent', 'latency_ms', 'upstream_status', 'bytes_out', 'rate_limit', 'fail_open',
  'shadow', 'truncated', 'stored_at',
];
/** Version 2: token_iat added (migration 11). */
const EVENT_COLUMNS_V2 = [...EVENT_COLUMNS_V1, 'token_iat'];
/** Version 3: upstream_target, upstream_tries and bytes_in added (migration 13). */
const EVENT_COLUMNS_V3 = [...EVENT_COLUMNS_V2, 'upstream_target', 'upstream_tries', 'bytes_in'];
/** Version 4: trace_id and config_hash added (migration 17). */
const EVENT_COLUMNS_V4 = [...EVENT_COLUMNS_V3, 'trace_id', 'config_hash'];
/** The version the sealer writes. */
export const EVENT_ROW_VERSION = 4;

const serialize = (e: string, columns: string[]): string => `record_send(row(${columns.map((c) => `${e}.${c}`).join(', ')}))`;
/** The serialization of row `e` in the version `version` (a SQL expression) names. */
const EVENT_ROW = (e: string, version: string): string =>
  `CASE ${version} WHEN 1 THEN ${serialize(e, EVENT_COLUMNS_V1)} WHEN 2 THEN ${serialize(e, EVENT_COLUMNS_V2)} WHEN 3 THEN ${serialize(e, EVENT_COLUMNS_V3)} ELSE ${serialize(e, EVENT_COLUMNS_V4)} END`;

const SECURITY_ROW = (s: string): string =>
  `record_send(row(${['event_id', 'ts', 'kind', 'actor', 'subject_kind', 'subject', 'reason', 'until', 'alert_id', 'stored_at'].map((c) => `${s}.${c}`).join(', ')}))`;

/** Microseconds since the epoch (extract gives an exact numeric). */
const micros = (t: string): string => `(extract(epoch FROM ${t}) * 1000000)::bigint`;

/**
 * count, min(ts) and digest of one table's rows with stored_at in [start, end): digest =
 * SHA-256 of the concatenated SHA-256 of each row's serialization, in (event_id, ts) order. The
 * per-row hashes keep what is sorted and aggregated at 32 bytes a row, however large the bucket
 * (hashing one ordered text instead sorts the whole rows, on disk past work_mem: measured slower).
 */
function digestQuery(table: string, row: (alias: string) => string, start: string, end: string, into: string): string {
  return `SELECT count(*)::bigint AS n, min(r.ts) AS min_ts,
    sha256(coalesce(string_agg(sha256(${row('r')}), ''::bytea ORDER BY r.event_id, r.ts), ''::bytea)) AS digest
    ${into} FROM ${table} r WHERE r.stored_at >= ${start} AND r.stored_at < ${end}`;
}

/** `version`: the row serialization's version, a SQL expression; `into`: a plpgsql `INTO target` clause, or nothing for a plain query. */
export const eventsDigestQuery = (start: string, end: string, version: string, into = ''): string =>
  digestQuery('audit_events', (e) => EVENT_ROW(e, version), start, end, into);
export const securityDigestQuery = (start: string, end: string, into = ''): string => digestQuery('audit_security_events', SECURITY_ROW, start, end, into);

/**
 * The link, as the verifier recomputes it in Node (link-hash.ts): SHA-256 of prev_hash ||
 * start_us || end_us || count || min_ts_us (0 when empty) || digest || security count ||
 * security digest, integers as 8 bytes big-endian.
 */
const LINK_HASH = `sha256(v_prev || int8send(${micros('v_start')}) || int8send(${micros('v_end')})
      || int8send(v_ev.n) || int8send(coalesce(${micros('v_ev.min_ts')}, 0)) || v_ev.digest
      || int8send(v_sec.n) || v_sec.digest)`;

/** The sealed tables and, once partitioned, their partitions (pg_partition_tree lists nothing for a plain table). */
const SEALED_TABLES = `SELECT 'audit_events'::regclass UNION SELECT relid FROM pg_partition_tree('audit_events')
      UNION SELECT 'audit_security_events'::regclass UNION SELECT relid FROM pg_partition_tree('audit_security_events')`;

/** Empty buckets at most merged into one link (a worker down for days seals its gap in a few links). */
const MAX_EMPTY_SPAN = `interval '1 hour'`;

/** The sealing function, made by version 9 and made again by each version that changes it. */
const SEAL_FUNCTION_DDL = `
-- Seals every closed bucket after the chain's head, oldest first, at most p_max_links; returns
-- the links it wrote. A bucket is closed when it ended before now() - p_margin_s and before
-- the start of every open transaction writing to the tables: a row's stored_at is its
-- transaction's start (now()), so no transaction still in flight can add a row to a closed
-- bucket. (xact_start of another role's session is hidden without pg_read_all_stats: then the
-- margin alone guards.)
CREATE OR REPLACE FUNCTION audit_chain_seal(p_bucket_s integer, p_margin_s integer, p_max_links integer)
RETURNS SETOF audit_chain LANGUAGE plpgsql
-- Custom plans: a generic plan of the bucket scans does not use the BRIN index.
SET plan_cache_mode = force_custom_plan SET client_encoding = 'UTF8' AS $fn$
DECLARE
  v_bucket interval := make_interval(secs => p_bucket_s);
  v_cutoff timestamptz;
  v_oldest_open timestamptz;
  v_seq bigint;
  v_prev bytea;
  v_start timestamptz;
  v_end timestamptz;
  v_ev record;
  v_sec record;
  v_link audit_chain;
BEGIN
  IF NOT pg_try_advisory_xact_lock(${CHAIN_LOCK_KEY}) THEN
    RETURN; -- another worker is sealing
  END IF;
  -- Summarize the BRIN ranges filled since the last run (of every partition, when partitioned):
  -- autosummarize needs autovacuum, which PGlite does not run, and an unsummarized range is
  -- scanned by every bucket query.
  PERFORM brin_summarize_new_values(i.indexrelid)
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
    WHERE am.amname = 'brin' AND ic.relkind = 'i'
      AND i.indrelid IN (${SEALED_TABLES});
  -- Transactions writing (or waiting to write) either table, whatever else runs in the database.
  SELECT min(a.xact_start) INTO v_oldest_open FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()
      AND l.relation IN (${SEALED_TABLES});
  v_cutoff := date_bin(v_bucket, least(now() - make_interval(secs => p_margin_s), v_oldest_open), 'epoch'::timestamptz);
  SELECT c.seq + 1, c.hash, c.bucket_end INTO v_seq, v_prev, v_start FROM audit_chain c ORDER BY c.seq DESC LIMIT 1;
  IF NOT FOUND THEN
    v_seq := 1;
    v_prev := decode(repeat('00', 32), 'hex'); -- the first link's predecessor
    v_start := date_bin(v_bucket, least((SELECT min(stored_at) FROM audit_events), (SELECT min(stored_at) FROM audit_security_events)), 'epoch'::timestamptz);
    IF v_start IS NULL THEN
      RETURN; -- nothing stored yet
    END IF;
  END IF;
  FOR i IN 1..p_max_links LOOP
    v_end := v_start + v_bucket;
    EXIT WHEN v_end > v_cutoff;
    -- A run of empty buckets becomes one link (up to an hour), so a long idle gap is sealed in a few links.
    WHILE v_end + v_bucket <= v_cutoff AND v_end - v_start < ${MAX_EMPTY_SPAN}
      AND NOT EXISTS (SELECT 1 FROM audit_events WHERE stored_at >= v_start AND stored_at < v_end + v_bucket)
      AND NOT EXISTS (SELECT 1 FROM audit_security_events WHERE stored_at >= v_start AND stored_at < v_end + v_bucket) LOOP
      v_end := v_end + v_bucket;
    END LOOP;
    ${eventsDigestQuery('v_start', 'v_end', String(EVENT_ROW_VERSION), 'INTO v_ev')};
    ${securityDigestQuery('v_start', 'v_end', 'INTO v_sec')};
    INSERT INTO audit_chain (seq, bucket_start, bucket_end, count, min_ts, digest, security_count, security_digest, prev_hash, hash, row_version)
    VALUES (v_seq, v_start, v_end, v_ev.n, v_ev.min_ts, v_ev.digest, v_sec.n, v_sec.digest, v_prev, ${LINK_HASH}, ${EVENT_ROW_VERSION})
    RETURNING * INTO v_link;
    RETURN NEXT v_link;
    v_prev := v_link.hash;
    v_seq := v_seq + 1;
    v_start := v_end;
  END LOOP;
END
$fn$;`;

/**
 * Appended to the worker's migration (EventStore.migrate). BRIN indexes on stored_at: it grows
 * with insertion order, so a block range summary serves the bucket scans at almost no insert cost
 * (a btree would add a second index write to every stored event). 32 pages a range (~500 events):
 * a bucket scan reads at most that many rows outside its bucket at each end.
 */
export const CHAIN_DDL = `
CREATE TABLE IF NOT EXISTS audit_chain (
  seq bigint PRIMARY KEY,
  bucket_start timestamptz NOT NULL UNIQUE,
  bucket_end timestamptz NOT NULL,
  count bigint NOT NULL,
  min_ts timestamptz,
  digest bytea NOT NULL,
  security_count bigint NOT NULL,
  security_digest bytea NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL,
  sealed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_events_stored_at ON audit_events USING brin (stored_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX IF NOT EXISTS audit_security_events_stored_at ON audit_security_events USING brin (stored_at) WITH (pages_per_range = 32, autosummarize = on);
${SEAL_FUNCTION_DDL}`;

/** Version 12: the links record the row serialization they were sealed with (older ones: 1). */
export const CHAIN_ROW_VERSION_DDL = `
ALTER TABLE audit_chain ADD COLUMN IF NOT EXISTS row_version smallint NOT NULL DEFAULT 1;
${SEAL_FUNCTION_DDL}`;

/** Versions 14 and 18: the sealing function made again, sealing rows in the version that holds the columns added by 13, then 17. */
export const SEAL_FUNCTION_AGAIN_DDL = SEAL_FUNCTION_DDL;
