/**
 * p50/p95 of the investigation queries over generated events in PostgreSQL, part of `npm run
 * bench`, or alone: `node dist/bench/investigation.js` (BENCH_EVENTS, default 1,000,000, spread
 * over the last 24 h; BENCH_PG_URL, default the test database). Events are generated in SQL
 * (generate_series), not through the gateway, into a schema of their own, with the store's own
 * migrations and indexes, then sealed into the chain (which rolls them up) as the worker would.
 */
import { randomBytes } from 'node:crypto';
import { ChainSealer } from '../audit-worker/chain/sealer.js';
import { parseEventFilter } from '../audit-worker/event-filter.js';
import { afterRevocation } from '../audit-worker/investigation/after-revocation.js';
import { parseAfterRevocationQuery, parseTimelineQuery, parseTopQuery } from '../audit-worker/investigation/params.js';
import { timeline } from '../audit-worker/investigation/timeline.js';
import { top } from '../audit-worker/investigation/top.js';
import { trace } from '../audit-worker/investigation/trace.js';
import { EventStore } from '../audit-worker/store/event-store.js';
import { utcDay } from '../audit-worker/store/partitions.js';
import { openPostgres } from '../audit-worker/store/sql-client.js';
import { silentLogger } from '../common/logger.js';
import { cpuSecondsNamed } from './proc-stats.js';

const SUBS = 10_000;
const rnd = (n: number): number => Math.floor(Math.random() * n);
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export interface QueryTime {
  name: string;
  p50ms: number;
  p95ms: number;
  runs: number;
}

async function timed(name: string, fn: () => Promise<unknown>, runs = 40): Promise<QueryTime> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(runs - 1, Math.floor(runs * q))]!;
  return { name, p50ms: at(0.5), p95ms: at(0.95), runs };
}

export interface InvestigationFigures {
  events: number;
  generateMs: number;
  /** Sealing the generated events into the chain, which also rolls them up. */
  seal: { ms: number; links: number; postgresUsPerEvent: number; workerUsPerEvent: number };
  queries: QueryTime[];
}

/**
 * Generates `n` events over the last 24 h in a schema of its own (dropped at the end unless
 * `keep`), seals them (as the worker's sealer would have, 10 s buckets), and times each question.
 * `postgresCpu` reads PostgreSQL's CPU seconds (every backend: the sealer's and its workers').
 */
export async function investigationFigures(pgUrl: string, n: number, postgresCpu: () => number, keep = false): Promise<InvestigationFigures> {
  const schema = `bench_investigation_${randomBytes(4).toString('hex')}`;
  const sql = await openPostgres(pgUrl, schema);
  try {
    const store = new EventStore(sql);
    await store.migrate();
    await store.partitions.ensure([utcDay(Date.now() - 86_400_000)]); // the 24 h reach into yesterday
    const spacing = (86_400_000 / n).toFixed(3);
    let started = performance.now();
    // One request in ten refused as revoked; ten requests per token, 10,000 subjects, 50,000
    // addresses each seen every 72 minutes (the worst case for any rollup by address); each
    // stored 50 ms after its time, as the worker would have.
    await sql.exec(`INSERT INTO audit_events (event_id, ts, request_id, gateway_id, route, method, path, status, decision, reason, detail,
        sub, consumer, jti, client_ip, user_agent, latency_ms, upstream_status, bytes_out, rate_limit, fail_open, shadow, truncated, stored_at)
      SELECT gen_random_uuid(), t, 'r-' || i, 'gw-1', 'route-' || (i % 20), 'GET', '/p/' || (i % 1000),
        CASE WHEN i % 10 = 0 THEN 401 ELSE 200 END, CASE WHEN i % 10 = 0 THEN 'deny' ELSE 'allow' END,
        CASE WHEN i % 10 = 0 THEN 'token_revoked' END, NULL, 'user-' || (i % ${SUBS}), 'demo:user-' || (i % ${SUBS}), 'jti-' || (i / 10),
        '10.' || (i % 250) || '.' || ((i / 250) % 200) || '.1', 'curl', 1.5, 200, 100, NULL, false, false, '{}', t + interval '50 milliseconds'
      FROM generate_series(1, ${n}) AS i, LATERAL (SELECT now() - interval '1 minute' - i * interval '${spacing} milliseconds' AS t) AS at`);
    // A revocation of one token in a hundred, and of one consumer in a hundred.
    await sql.exec(`INSERT INTO audit_security_events (event_id, ts, kind, actor, subject_kind, subject, reason, until, alert_id)
      SELECT gen_random_uuid(), now() - i * interval '${spacing} milliseconds', 'revoke', 'admin-cli:bench', 'jti', 'jti-' || (i / 10), 'bench', now() + interval '1 day', NULL::uuid
      FROM generate_series(1, ${n}, 1000) AS i
      UNION ALL
      SELECT gen_random_uuid(), now() - interval '12 hours', 'revoke', 'admin-cli:bench', 'consumer', 'demo:user-' || i, 'bench', NULL, NULL
      FROM generate_series(0, ${SUBS - 1}, 100) AS i`);
    await sql.exec('VACUUM ANALYZE audit_events');
    await sql.exec('ANALYZE audit_security_events');
    const generateMs = performance.now() - started;

    const sealer = new ChainSealer(sql, silentLogger(), { maxLinksPerRun: 100_000 });
    const [pgBefore, nodeBefore] = [postgresCpu(), process.cpuUsage()];
    started = performance.now();
    let links = 0;
    for (let run = await sealer.sealOnce(); run.length > 0; run = await sealer.sealOnce()) links += run.length;
    const node = process.cpuUsage(nodeBefore);
    const seal = { ms: performance.now() - started, links, postgresUsPerEvent: ((postgresCpu() - pgBefore) * 1e6) / n, workerUsPerEvent: (node.user + node.system) / n };

    const queries = [
      await timed('events --sub (page of 100)', () => store.query(parseEventFilter({ sub: `user-${rnd(SUBS)}` }))),
      await timed('trace', () => trace(sql, `r-${1 + rnd(n)}`)),
      await timed('timeline --sub --since 24h', () => timeline(sql, parseTimelineQuery({ since: '24h', sub: `user-${rnd(SUBS)}` }))),
      await timed('timeline --route --since 24h', () => timeline(sql, parseTimelineQuery({ since: '24h', route: `route-${rnd(20)}` }))),
      await timed('timeline --since 24h', () => timeline(sql, parseTimelineQuery({ since: '24h' }))),
      await timed('top --by reason --since 24h', () => top(sql, parseTopQuery({ by: 'reason', since: '24h' }))),
      await timed('top --by route --since 24h', () => top(sql, parseTopQuery({ by: 'route', since: '24h', decision: 'deny' }))),
      await timed('top --by ip --since 24h', () => top(sql, parseTopQuery({ by: 'ip', since: '24h' })), 10),
      await timed('top --by ip --since 1h', () => top(sql, parseTopQuery({ by: 'ip', since: '1h' }))),
      await timed('after-revocation --jti', () => afterRevocation(sql, parseAfterRevocationQuery({ jti: `jti-${rnd(n / 1000) * 100}` }))),
      await timed('after-revocation --sub', () => afterRevocation(sql, parseAfterRevocationQuery({ sub: `user-${rnd(SUBS / 100) * 100}` }))),
    ];
    return { events: n, generateMs, seal, queries };
  } finally {
    // BENCH_INVESTIGATION_KEEP=1 keeps the schema, to look at the plans.
    if (keep) console.log(`kept schema ${schema}`);
    else await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.close();
  }
}

export function printInvestigationFigures(f: InvestigationFigures): void {
  console.log(`investigation, ${fmt(f.events)} events over 24 h in PostgreSQL (generated in SQL in ${fmt(f.generateMs / 1000, 1)} s): ` +
    `sealed and rolled up in ${fmt(f.seal.ms / 1000, 1)} s (${fmt(f.seal.links)} links), CPU µs/event: PostgreSQL ${fmt(f.seal.postgresUsPerEvent, 1)}, worker ${fmt(f.seal.workerUsPerEvent, 2)}`);
  for (const q of f.queries) {
    console.log(`  ${q.name.padEnd(30)} p50 ${fmt(q.p50ms, 1).padStart(7)} ms   p95 ${fmt(q.p95ms, 1).padStart(7)} ms   (${q.runs} runs; target p95 < 100 ms)`);
  }
}

// Run alone: `node dist/bench/investigation.js` (BENCH_EVENTS, BENCH_PG_URL).
if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await investigationFigures(
    process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    Number(process.env.BENCH_EVENTS ?? 1_000_000),
    () => cpuSecondsNamed('postgres'),
    Boolean(process.env.BENCH_INVESTIGATION_KEEP),
  );
  printInvestigationFigures(figures);
}
