/**
 * The hash chain's costs on the machine's PostgreSQL (`node dist/bench/audit-chain.js`):
 * 1. the insert path with and without the BRIN index on stored_at (the chain's only cost there),
 *    PostgreSQL CPU per stored event, alternating rounds;
 * 2. sealing 100,000 events in 100 buckets: the sealer's CPU (worker and PostgreSQL) per event;
 * 3. verifying them: wall time and CPU.
 * One connection (pool max 1), so the backend's CPU is read from /proc by its pid.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../common/logger.js';
import { ChainSealer } from '../audit-worker/chain/sealer.js';
import { verifyChain } from '../audit-worker/chain/verifier.js';
import { EventStore } from '../audit-worker/store/event-store.js';
import { openPostgres, type SqlClient } from '../audit-worker/store/sql-client.js';
import { auditEvent } from '../test/helpers/audit-events.js';
import { cpuSeconds } from './proc-stats.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BATCH = 200;
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function backendPid(sql: SqlClient): Promise<number> {
  return (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** PostgreSQL CPU µs per event for `n` events stored in batches of 200 (events built beforehand). */
async function insertCost(store: EventStore, pid: number, n: number): Promise<number> {
  const batches = Array.from({ length: n / BATCH }, () => Array.from({ length: BATCH }, () => auditEvent({ decision: 'allow', reason: null, status: 200 })));
  const before = cpuSeconds(pid);
  for (const batch of batches) await store.insert(batch);
  return ((cpuSeconds(pid) - before) * 1e6) / n;
}

async function main(): Promise<void> {
  const schema = `bench_chain_${randomBytes(4).toString('hex')}`;
  const sql = await openPostgres(PG_URL, schema, { max: 1 });
  try {
    const store = new EventStore(sql);
    await store.migrate();
    const pid = await backendPid(sql);

    // 1. Insert path: BRIN on stored_at present or not, 4 alternating rounds of 20,000 events.
    const withBrin: number[] = [];
    const without: number[] = [];
    for (let round = 0; round < (process.env.BENCH_CHAIN_SKIP_INSERT ? 0 : 4); round++) {
      for (const brin of round % 2 === 0 ? [true, false] : [false, true]) {
        if (brin) await sql.exec('CREATE INDEX IF NOT EXISTS audit_events_stored_at ON audit_events USING brin (stored_at) WITH (pages_per_range = 32, autosummarize = on)');
        else await sql.exec('DROP INDEX IF EXISTS audit_events_stored_at');
        (brin ? withBrin : without).push(await insertCost(store, pid, 20_000));
      }
    }
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    if (withBrin.length) console.log(`insert path, PostgreSQL CPU µs/event (batches of ${BATCH}): without the BRIN index ${without.map((x) => fmt(x, 1)).join(', ')} (mean ${fmt(avg(without), 1)}); with it ${withBrin.map((x) => fmt(x, 1)).join(', ')} (mean ${fmt(avg(withBrin), 1)})`);

    // 2. Seal 100,000 fresh events in 100 buckets of 10 s (stored_at from a setting, in insertion order, an hour back).
    await sql.exec('TRUNCATE audit_events, audit_chain');
    await sql.exec(`ALTER TABLE audit_events ALTER COLUMN stored_at SET DEFAULT current_setting('bench.stored_at')::timestamptz`);
    const base = Math.floor((Date.now() - 3_600_000) / 10_000) * 10_000;
    for (let bucket = 0; bucket < 100; bucket++) {
      await sql.query(`SELECT set_config('bench.stored_at', $1, false)`, [new Date(base + bucket * 10_000 + 1_000).toISOString()]);
      for (let b = 0; b < 1000 / BATCH; b++) await store.insert(Array.from({ length: BATCH }, () => auditEvent({ decision: 'allow', reason: null, status: 200 })));
    }
    await sql.exec('ALTER TABLE audit_events ALTER COLUMN stored_at SET DEFAULT now()');
    await sql.exec('VACUUM ANALYZE audit_events');
    const sealer = new ChainSealer(sql, silentLogger(), { maxLinksPerRun: 1_000 });
    let pgBefore = cpuSeconds(pid);
    let nodeBefore = process.cpuUsage();
    let started = performance.now();
    const links = await sealer.sealOnce();
    let ms = performance.now() - started;
    let node = process.cpuUsage(nodeBefore);
    const sealedEvents = links.reduce((n, l) => n + l.count, 0);
    console.log(`sealing ${fmt(sealedEvents)} events in ${links.length} links: ${fmt(ms)} ms; CPU µs/event: PostgreSQL ${fmt(((cpuSeconds(pid) - pgBefore) * 1e6) / sealedEvents, 1)}, worker ${fmt((node.user + node.system) / sealedEvents, 2)}`);

    // 3. Verify them all (3 runs).
    for (let run = 0; run < 3; run++) {
      pgBefore = cpuSeconds(pid);
      nodeBefore = process.cpuUsage();
      started = performance.now();
      const report = await verifyChain(sql);
      ms = performance.now() - started;
      node = process.cpuUsage(nodeBefore);
      console.log(`verify: ${report.status}, ${fmt(report.events_verified)} events in ${report.links_verified} links in ${fmt(ms)} ms; CPU: PostgreSQL ${fmt((cpuSeconds(pid) - pgBefore) * 1000)} ms, verifier ${fmt((node.user + node.system) / 1000)} ms`);
    }
  } finally {
    // BENCH_CHAIN_KEEP=1 keeps the schema, to look at the plans.
    if (process.env.BENCH_CHAIN_KEEP) console.log(`kept schema ${schema}`);
    else await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.close();
  }
}

await main();
