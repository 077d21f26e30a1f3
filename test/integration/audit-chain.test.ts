import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { silentLogger } from '../../common/logger.js';
import { securityEvent } from '../../common/security-event.js';
import { ChainSealer, type SealedLink } from '../../audit-worker/chain/sealer.js';
import { verifyChain } from '../../audit-worker/chain/verifier.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { insertSecurityEvents } from '../../audit-worker/store/security-event-store.js';
import { openPGlite, openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { auditEvent } from '../helpers/audit-events.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/net.js';
import { PG_URL } from '../helpers/postgres.js';

interface Backend {
  name: string;
  /** `second`: another client on the same database (a second worker), or the same one (PGlite has one connection). */
  open(): Promise<{ sql: SqlClient; second(): Promise<SqlClient>; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PostgreSQL',
    async open() {
      const schema = `audit_chain_${randomBytes(6).toString('hex')}`;
      const sql = await openPostgres(PG_URL, schema);
      const others: SqlClient[] = [];
      return {
        sql,
        async second() {
          others.push(await openPostgres(PG_URL, schema));
          return others.at(-1)!;
        },
        async cleanup() {
          for (const other of others) await other.close();
          await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await sql.close();
        },
      };
    },
  },
  {
    name: 'PGlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'audit-chain-'));
      const sql = await openPGlite(join(dir, 'db'));
      return {
        sql,
        second: async () => sql,
        async cleanup() {
          await sql.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

const BUCKET_S = 10;

for (const backend of backends) {
  describe(`audit hash chain on ${backend.name}`, function () {
    this.timeout(60_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let second: () => Promise<SqlClient>;
    let sealer: ChainSealer;
    let sealed: SealedLink[] = [];
    // Fixture buckets an hour back: the first at `base`, each later one 10 s after the previous.
    const base = Math.floor((Date.now() - 3_600_000) / (BUCKET_S * 1000)) * BUCKET_S * 1000;
    const bucketTime = (i: number): string => new Date(base + i * BUCKET_S * 1000 + 1_000).toISOString();
    const ids: string[][] = [];

    /** Stores `n` events (through the store) and moves them into bucket `i`, as if stored then. */
    async function storeInBucket(store: EventStore, i: number, n: number, overrides = {}): Promise<string[]> {
      const events = Array.from({ length: n }, () => auditEvent(overrides));
      await store.insert(events);
      const eventIds = events.map((e) => e.event_id);
      await sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = ANY($2::uuid[])`, [bucketTime(i), eventIds]);
      return eventIds;
    }

    async function sealAll(s: ChainSealer): Promise<SealedLink[]> {
      const links: SealedLink[] = [];
      for (let run = await s.sealOnce(); run.length > 0; run = await s.sealOnce()) links.push(...run);
      return links;
    }

    before(async () => {
      const opened = await backend.open();
      ({ sql, cleanup, second } = opened);
      const store = new EventStore(sql);
      await store.migrate();
      await store.migrate(); // idempotent, the sealing function included
      // Buckets 0, 1 and 3 hold events (2 is empty); bucket 1 also a security event.
      ids.push(await storeInBucket(store, 0, 5), await storeInBucket(store, 1, 3));
      ids.push([], await storeInBucket(store, 3, 4, { latency_ms: 0.1 + 0.2, detail: 'line\nbreak "quoted" \u00e9' }));
      const ban = securityEvent({ kind: 'ban', actor: 'admin-cli:ops', target: { ip: '203.0.113.9' }, reason: 'credential stuffing', ttlSeconds: 600 });
      await insertSecurityEvents(sql, [ban]);
      await sql.query(`UPDATE audit_security_events SET stored_at = $1::timestamptz`, [bucketTime(1)]);
      sealer = new ChainSealer(sql, silentLogger(), { bucketSeconds: BUCKET_S, marginSeconds: 2, maxLinksPerRun: 2 });
      sealed = await sealAll(sealer);
    });
    after(async () => cleanup?.());

    it('seals every closed bucket into one contiguous chain, oldest first', async () => {
      expect(sealed.map((l) => l.seq)).to.deep.equal(sealed.map((_, i) => i + 1));
      expect(sealed[0]!.bucket_start).to.equal(new Date(base).toISOString());
      expect(sealed.slice(0, 4).map((l) => [l.count, l.security_count])).to.deep.equal([[5, 0], [3, 1], [0, 0], [4, 0]]);
      for (let i = 1; i < sealed.length; i++) expect(sealed[i]!.bucket_start).to.equal(sealed[i - 1]!.bucket_end);
      // Then empty runs of up to an hour each, up to the last closed bucket.
      const end = Date.parse(sealed.at(-1)!.bucket_end);
      expect(end).to.be.at.most(Date.now() - 2_000).and.above(Date.now() - 2_000 - 2 * BUCKET_S * 1000 - 60_000);
      expect(await sealer.sealOnce()).to.deep.equal([]);
    });

    it('verifies an intact chain with the exact counts', async () => {
      const report = await verifyChain(sql);
      expect(report, report.message).to.include({ status: 'intact', events_verified: 12, security_events_verified: 1, links_verified: sealed.length, not_yet_sealed: 0 });
      expect(report.head).to.deep.equal({ seq: sealed.at(-1)!.seq, hash: sealed.at(-1)!.hash });
      expect(report.message).to.match(/^intact: 12 events and 1 security events in \d+ links verified from /);
    });

    it('verifies from a given time on, and counts what is not yet sealed', async () => {
      const store = new EventStore(sql);
      await store.insert([auditEvent(), auditEvent()]); // stored now: its bucket is still open
      const report = await verifyChain(sql, { since: new Date(base + BUCKET_S * 1000).toISOString() });
      expect(report, report.message).to.include({ status: 'intact', events_verified: 7, from: new Date(base + BUCKET_S * 1000).toISOString(), not_yet_sealed: 2 });
      expect(report.message).to.include('not yet sealed: 2');
    });

    it('detects a row edited in a sealed bucket, naming the bucket', async () => {
      await sql.query(`UPDATE audit_events SET status = 200 WHERE event_id = $1`, [ids[1]![0]]);
      const report = await verifyChain(sql);
      expect(report.status).to.equal('broken');
      expect(report.broken).to.deep.include({ what: 'digest_mismatch', seq: 2, table: 'audit_events', sealed_count: 3, stored_count: 3 });
      expect(report.message).to.equal(`broken at link #2 [${new Date(base + 10_000).toISOString()}, ${new Date(base + 20_000).toISOString()}): digest mismatch in audit_events, 3 rows as sealed but other contents (a row edited, or deleted and another inserted)`);
      await sql.query(`UPDATE audit_events SET status = 401 WHERE event_id = $1`, [ids[1]![0]]);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('detects a change no wider than one float bit or one json key', async () => {
      await sql.query(`UPDATE audit_events SET latency_ms = latency_ms + 1e-15 WHERE event_id = $1`, [ids[3]![0]]);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 4 });
      await sql.query(`UPDATE audit_events SET latency_ms = $2 WHERE event_id = $1`, [ids[3]![0], 0.1 + 0.2]);
      await sql.query(`UPDATE audit_events SET rate_limit = rate_limit || '{"remaining": 40}' WHERE event_id = $1`, [ids[0]![2]]);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 1 });
      await sql.query(`UPDATE audit_events SET rate_limit = rate_limit || '{"remaining": 41}' WHERE event_id = $1`, [ids[0]![2]]);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it("detects an edited token_iat, upstream_tries, trace_id or config_hash (row serialization 4), and a link's serialization version changed", async () => {
      await sql.query(`UPDATE audit_events SET token_iat = '2026-01-01T00:00:00Z' WHERE event_id = $1`, [ids[0]![1]]);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 1 });
      await sql.query(`UPDATE audit_events SET token_iat = NULL WHERE event_id = $1`, [ids[0]![1]]);
      expect((await verifyChain(sql)).status).to.equal('intact');
      await sql.query(`UPDATE audit_events SET upstream_tries = 2 WHERE event_id = $1`, [ids[0]![1]]);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 1 });
      await sql.query(`UPDATE audit_events SET upstream_tries = 0 WHERE event_id = $1`, [ids[0]![1]]);
      expect((await verifyChain(sql)).status).to.equal('intact');
      for (const column of ['trace_id', 'config_hash']) {
        const { rows } = await sql.query<{ v: string | null }>(`SELECT ${column} AS v FROM audit_events WHERE event_id = $1`, [ids[0]![1]]);
        await sql.query(`UPDATE audit_events SET ${column} = 'ffffffffffffffffffffffffffffffff' WHERE event_id = $1`, [ids[0]![1]]);
        expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 1 });
        await sql.query(`UPDATE audit_events SET ${column} = $2 WHERE event_id = $1`, [ids[0]![1], rows[0]!.v]);
        expect((await verifyChain(sql)).status).to.equal('intact');
      }
      // A link claiming an older serialization (without the newer columns): its rows no longer give its digest.
      expect((await sql.query<{ v: number }>('SELECT row_version AS v FROM audit_chain WHERE seq = 2')).rows[0]!.v).to.equal(4);
      for (const older of [1, 2, 3]) {
        await sql.query('UPDATE audit_chain SET row_version = $1 WHERE seq = 2', [older]);
        expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 2 });
      }
      await sql.query('UPDATE audit_chain SET row_version = 4 WHERE seq = 2');
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('detects a row deleted from a sealed bucket', async () => {
      const { rows } = await sql.query<{ row: string }>(`SELECT row_to_json(e)::text AS row FROM audit_events e WHERE event_id = $1`, [ids[0]![4]]);
      await sql.query(`DELETE FROM audit_events WHERE event_id = $1`, [ids[0]![4]]);
      const report = await verifyChain(sql);
      expect(report.broken).to.deep.include({ what: 'count_mismatch', seq: 1, table: 'audit_events', sealed_count: 5, stored_count: 4 });
      expect(report.message).to.match(/^broken at link #1 \[.*\): count mismatch in audit_events, sealed 5 rows, 4 stored now \(rows deleted\)$/);
      await sql.query(`INSERT INTO audit_events SELECT * FROM json_populate_record(null::audit_events, $1::json)`, [rows[0]!.row]);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('detects a row inserted into a sealed bucket, even an empty one', async () => {
      const forged = auditEvent();
      await new EventStore(sql).insert([forged]);
      await sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = $2`, [bucketTime(2), forged.event_id]);
      const report = await verifyChain(sql);
      expect(report.broken).to.deep.include({ what: 'count_mismatch', seq: 3, sealed_count: 0, stored_count: 1 });
      expect(report.message).to.include('(rows inserted)');
      await sql.query(`DELETE FROM audit_events WHERE event_id = $1`, [forged.event_id]);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('detects a row inserted before the chain began', async () => {
      const forged = auditEvent();
      await new EventStore(sql).insert([forged]);
      await sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = $2`, [new Date(base - 60_000).toISOString(), forged.event_id]);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'rows_before_chain', seq: 1, table: 'audit_events', stored_count: 1 });
      await sql.query(`DELETE FROM audit_events WHERE event_id = $1`, [forged.event_id]);
    });

    it('detects a security event edited', async () => {
      await sql.query(`UPDATE audit_security_events SET reason = 'nothing to see'`);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'digest_mismatch', seq: 2, table: 'audit_security_events' });
      await sql.query(`UPDATE audit_security_events SET reason = 'credential stuffing'`);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('detects a chain link edited, removed or rewritten out of step', async () => {
      // A count edited to hide a deletion: the link's hash no longer matches its fields.
      await sql.query(`UPDATE audit_chain SET count = 4 WHERE seq = 1`);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'link_mismatch', seq: 1 });
      await sql.query(`UPDATE audit_chain SET count = 5 WHERE seq = 1`);
      // A link's hash recomputed after editing it: the next link's prev_hash gives it away.
      const { rows } = await sql.query<{ hash: string }>(`SELECT encode(hash, 'hex') AS hash FROM audit_chain WHERE seq = 2`);
      await sql.query(`UPDATE audit_chain SET hash = sha256(hash) WHERE seq = 2`);
      const report = await verifyChain(sql);
      expect(report.broken).to.deep.include({ what: 'link_mismatch', seq: 2 });
      await sql.query(`UPDATE audit_chain SET hash = decode($1, 'hex') WHERE seq = 2`, [rows[0]!.hash]);
      // A link removed.
      const { rows: link } = await sql.query<{ row: string }>(`SELECT row_to_json(c)::text AS row FROM audit_chain c WHERE seq = 3`);
      await sql.query(`DELETE FROM audit_chain WHERE seq = 3`);
      expect((await verifyChain(sql)).broken).to.deep.include({ what: 'prev_mismatch', seq: 4 });
      await sql.query(`INSERT INTO audit_chain SELECT * FROM json_populate_record(null::audit_chain, $1::json)`, [link[0]!.row]);
      expect((await verifyChain(sql)).status).to.equal('intact');
    });

    it('checks a published head: a chain rewritten consistently verifies, but not against its anchor', async () => {
      const head = sealed.at(-1)!;
      expect((await verifyChain(sql, { anchor: { seq: head.seq, hash: head.hash } })).status).to.equal('intact');
      // The attack the anchor exists for: a row edited, then that link and every later one recomputed.
      await sql.query(`UPDATE audit_events SET status = 200 WHERE event_id = $1`, [ids[3]![1]]);
      const { rows: saved } = await sql.query<{ row: string }>(`SELECT row_to_json(c)::text AS row FROM audit_chain c WHERE seq >= 4 ORDER BY seq`);
      await sql.query(`DELETE FROM audit_chain WHERE seq >= 4`);
      await sealAll(sealer);
      const rewritten = await verifyChain(sql);
      expect(rewritten.status, rewritten.message).to.equal('intact');
      const anchored = await verifyChain(sql, { anchor: { seq: head.seq, hash: head.hash } });
      expect(anchored.broken).to.deep.include({ what: 'anchor_mismatch', seq: head.seq });
      expect(anchored.message).to.match(/^broken at link #\d+ \[.*\): anchor mismatch, its hash is not the one published \(the chain was rewritten\)$/);
      // Walking from after the anchor still checks it; an anchor past the head is a cut chain.
      const since = new Date(Date.parse(head.bucket_end)).toISOString();
      expect((await verifyChain(sql, { since, anchor: { seq: head.seq, hash: head.hash } })).broken).to.deep.include({ what: 'anchor_mismatch' });
      expect((await verifyChain(sql, { anchor: { seq: 1_000_000, hash: head.hash } })).message).to.equal('broken at link #1000000: anchor mismatch, no such link (the chain was cut or rewritten)');
      // Put the original chain and row back.
      await sql.query(`DELETE FROM audit_chain WHERE seq >= 4`);
      for (const { row } of saved) await sql.query(`INSERT INTO audit_chain SELECT * FROM json_populate_record(null::audit_chain, $1::json)`, [row]);
      await sql.query(`UPDATE audit_events SET status = 401 WHERE event_id = $1`, [ids[3]![1]]);
      expect((await verifyChain(sql, { anchor: { seq: head.seq, hash: head.hash } })).status).to.equal('intact');
    });

    it('two workers sealing at once write one chain, without a duplicate or a fork', async () => {
      // A database of its own: twelve buckets of events an hour back, none sealed yet.
      const other = await backend.open();
      try {
        const store = new EventStore(other.sql);
        await store.migrate();
        for (let i = 0; i < 12; i++) {
          const events = [auditEvent(), auditEvent()];
          await store.insert(events);
          await other.sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = ANY($2::uuid[])`, [bucketTime(i), events.map((e) => e.event_id)]);
        }
        const a = new ChainSealer(other.sql, silentLogger(), { bucketSeconds: BUCKET_S, marginSeconds: 2, maxLinksPerRun: 1 });
        const b = new ChainSealer(await other.second(), silentLogger(), { bucketSeconds: BUCKET_S, marginSeconds: 2, maxLinksPerRun: 1 });
        const [fromA, fromB] = await Promise.all([sealAll(a), sealAll(b)]);
        const seqs = [...fromA, ...fromB].map((l) => l.seq).sort((x, y) => x - y);
        expect(seqs).to.deep.equal(seqs.map((_, i) => i + 1));
        expect(seqs.length).to.be.above(12);
        const { rows } = await other.sql.query<{ n: number; starts: number }>(`SELECT count(*)::int AS n, count(DISTINCT bucket_start)::int AS starts FROM audit_chain`);
        expect(rows[0]).to.deep.equal({ n: seqs.length, starts: seqs.length });
        const report = await verifyChain(other.sql);
        expect(report, report.message).to.include({ status: 'intact', events_verified: 24, links_verified: seqs.length });
      } finally {
        await other.cleanup();
      }
    });

    it('reports links whose events retention dropped as beyond retention, not as tampering', async () => {
      const other = await backend.open();
      try {
        const store = new EventStore(other.sql);
        await store.migrate();
        // Events of three days ago stored in bucket 0, recent ones in bucket 1; then the old UTC day is dropped whole.
        const old = new Date(Date.now() - 3 * 86_400_000).toISOString();
        const events = [auditEvent({ ts: old }), auditEvent({ ts: old }), auditEvent()];
        await store.insert(events);
        await other.sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = ANY($2::uuid[])`, [bucketTime(0), events.map((e) => e.event_id)]);
        const recent = [auditEvent(), auditEvent()];
        await store.insert(recent);
        await other.sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = ANY($2::uuid[])`, [bucketTime(1), recent.map((e) => e.event_id)]);
        await sealAll(new ChainSealer(other.sql, silentLogger(), { bucketSeconds: BUCKET_S, marginSeconds: 2 }));
        expect((await verifyChain(other.sql)).events_verified).to.equal(5);
        await other.sql.query(`DELETE FROM audit_events WHERE ts < date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'`, [old]);
        const report = await verifyChain(other.sql);
        expect(report, report.message).to.include({ status: 'intact', links_beyond_retention: 1, events_verified: 2 });
        expect(report.message).to.include('1 links beyond retention');
        // Retention only removes: more rows in that link than it sealed is an insertion.
        const forged = [auditEvent(), auditEvent(), auditEvent()];
        await store.insert(forged);
        await other.sql.query(`UPDATE audit_events SET stored_at = $1::timestamptz WHERE event_id = ANY($2::uuid[])`, [bucketTime(0), forged.map((e) => e.event_id)]);
        expect((await verifyChain(other.sql)).broken).to.deep.include({ what: 'count_mismatch', seq: 1, sealed_count: 3, stored_count: 4 });
        await other.sql.query(`DELETE FROM audit_events WHERE event_id = ANY($1::uuid[])`, [forged.map((e) => e.event_id)]);
        // Retention drops whole days: one recent row deleted is still tampering.
        await other.sql.query(`DELETE FROM audit_events WHERE event_id = $1`, [recent[0]!.event_id]);
        expect((await verifyChain(other.sql)).broken).to.deep.include({ what: 'count_mismatch', seq: 2, sealed_count: 2, stored_count: 1 });
      } finally {
        await other.cleanup();
      }
    });
  });
}

describe('audit hash chain sealing beside a transaction in flight (PostgreSQL)', function () {
  this.timeout(60_000);

  it('reports a chain held back by a transaction left open: error log and /healthz status, cleared once it ends', async () => {
    const schema = `audit_chain_${randomBytes(6).toString('hex')}`;
    const sql = await openPostgres(PG_URL, schema);
    const held = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    const { logger, lines } = captureLogger();
    const sealer = new ChainSealer(sql, logger, { bucketSeconds: 1, marginSeconds: 0, intervalMs: 200, lagAlertSeconds: 3 });
    try {
      const store = new EventStore(sql);
      await store.migrate();
      await store.insert([auditEvent()]);
      await held.connect();
      await held.query('BEGIN');
      await held.query('LOCK TABLE audit_events IN ROW EXCLUSIVE MODE'); // as an insert in flight holds it
      sealer.start();
      await eventually(async () => lines.find((l) => l.code === 'audit_chain_lagging'), 20_000, 'the lagging chain to be logged');
      const line = lines.find((l) => l.code === 'audit_chain_lagging')!;
      expect(line).to.include({ level: 'error', lag_alert_s: 3, failed_runs: 0 });
      expect(line.head_lag_s).to.be.above(3);
      expect(sealer.status()).to.include({ lagging: true, failed_runs: 0 });
      await held.query('COMMIT');
      await eventually(async () => (sealer.status().lagging ? undefined : true), 20_000, 'the chain to catch up');
      expect(sealer.status().head_lag_s).to.be.at.most(3);
    } finally {
      await sealer.stop();
      await held.end().catch(() => undefined);
      await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.close();
    }
  });

  it('does not seal the bucket of an insert that began before the bucket ended and commits after', async () => {
    const schema = `audit_chain_${randomBytes(6).toString('hex')}`;
    const sql = await openPostgres(PG_URL, schema);
    const held = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    try {
      const store = new EventStore(sql);
      await store.migrate();
      await held.connect();
      // One connection as a SqlClient, so the insert runs inside the transaction held open here.
      const onHeld = { query: async (q: string, p?: unknown[]) => ({ rows: (await held.query(q, p)).rows }), exec: async (q: string) => void (await held.query(q)) };
      // Already inside the held transaction: a transaction the store asks for runs in it.
      const heldStore = new EventStore({ ...onHeld, transaction: (work) => work(onHeld), close: () => held.end() });
      await held.query('BEGIN');
      const late = auditEvent();
      await heldStore.insert([late]);
      const { rows } = await held.query<{ started: string }>(`SELECT now()::text AS started`);
      const started = rows[0]!.started;
      await store.insert([auditEvent()]); // committed, in the same bucket or the next

      // 1 s buckets, 1 s margin: wait (on the database's clock) until the held row's bucket is long closed.
      const sealer = new ChainSealer(sql, silentLogger(), { bucketSeconds: 1, marginSeconds: 1 });
      await eventually(async () => ((await sql.query<{ ok: boolean }>(`SELECT now() > $1::timestamptz + interval '3 s' AS ok`, [started])).rows[0]!.ok ? true : undefined), 20_000, 'the held bucket to end');
      const before = await sealer.sealOnce();
      for (const link of before) expect(Date.parse(link.bucket_end)).to.be.at.most(Date.parse(started));

      await held.query('COMMIT');
      await sealer.sealOnce();
      const report = await verifyChain(sql);
      expect(report, report.message).to.include({ status: 'intact', events_verified: 2, not_yet_sealed: 0 });
    } finally {
      await held.end().catch(() => undefined);
      await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.close();
    }
  });
});
