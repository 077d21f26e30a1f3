/**
 * p50/p95 of the investigation queries over generated events in PostgreSQL:
 * `node dist/bench/investigation.js` (BENCH_EVENTS, default 1,000,000, spread over the last 24 h;
 * BENCH_PG_URL, default the test database). Events are generated in SQL (generate_series), not
 * through the gateway, into a schema of their own that is dropped at the end. The indexes the
 * queries need (README, Investigation) are created here when the store's migration lacks them.
 */
import { randomBytes } from 'node:crypto';
import { parseEventFilter } from '../audit-worker/event-filter.js';
import { afterRevocation } from '../audit-worker/investigation/after-revocation.js';
import { parseAfterRevocationQuery, parseTimelineQuery, parseTopQuery } from '../audit-worker/investigation/params.js';
import { timeline } from '../audit-worker/investigation/timeline.js';
import { top } from '../audit-worker/investigation/top.js';
import { trace } from '../audit-worker/investigation/trace.js';
import { EventStore } from '../audit-worker/store/event-store.js';
import { utcDay } from '../audit-worker/store/partitions.js';
import { openPostgres } from '../audit-worker/store/sql-client.js';

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SUBS = 10_000;
const schema = `bench_investigation_${randomBytes(4).toString('hex')}`;
const sql = await openPostgres(process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', schema);
const rnd = (n: number): number => Math.floor(Math.random() * n);

async function p95(name: string, fn: () => Promise<unknown>, runs = 40): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(runs - 1, Math.floor(runs * q))]!.toFixed(1);
  console.log(`${name.padEnd(30)} p50 ${at(0.5).padStart(8)} ms   p95 ${at(0.95).padStart(8)} ms   (${runs} runs)`);
}

try {
  const store = new EventStore(sql);
  await store.migrate();
  await store.partitions.ensure([utcDay(Date.now() - 86_400_000)]); // the 24 h reach into yesterday
  const spacing = (86_400_000 / N).toFixed(3);
  let started = performance.now();
  // One request in ten refused as revoked; ten requests per token, 10,000 subjects, 50,000 addresses.
  await sql.exec(`INSERT INTO audit_events (event_id, ts, request_id, gateway_id, route, method, path, status, decision, reason, detail,
      sub, consumer, jti, client_ip, user_agent, latency_ms, upstream_status, bytes_out, rate_limit, fail_open, shadow, truncated)
    SELECT gen_random_uuid(), now() - i * interval '${spacing} milliseconds', 'r-' || i, 'gw-1', 'route-' || (i % 20), 'GET', '/p/' || (i % 1000),
      CASE WHEN i % 10 = 0 THEN 401 ELSE 200 END, CASE WHEN i % 10 = 0 THEN 'deny' ELSE 'allow' END,
      CASE WHEN i % 10 = 0 THEN 'token_revoked' END, NULL, 'user-' || (i % ${SUBS}), 'demo:user-' || (i % ${SUBS}), 'jti-' || (i / 10),
      '10.' || (i % 250) || '.' || ((i / 250) % 200) || '.1', 'curl', 1.5, 200, 100, NULL, false, false, '{}'
    FROM generate_series(1, ${N}) AS i`);
  // A revocation of one token in a hundred, and of one consumer in a hundred.
  await sql.exec(`INSERT INTO audit_security_events (event_id, ts, kind, actor, subject_kind, subject, reason, until, alert_id)
    SELECT gen_random_uuid(), now() - i * interval '${spacing} milliseconds', 'revoke', 'admin-cli:bench', 'jti', 'jti-' || (i / 10), 'bench', now() + interval '1 day', NULL::uuid
    FROM generate_series(1, ${N}, 1000) AS i
    UNION ALL
    SELECT gen_random_uuid(), now() - interval '12 hours', 'revoke', 'admin-cli:bench', 'consumer', 'demo:user-' || i, 'bench', NULL, NULL
    FROM generate_series(0, ${SUBS - 1}, 100) AS i`);
  console.log(`generated ${N} events in ${Math.round(performance.now() - started)} ms`);
  started = performance.now();
  await sql.exec(`CREATE INDEX IF NOT EXISTS audit_events_jti_ts ON audit_events (jti, ts);
    CREATE INDEX IF NOT EXISTS audit_events_route_ts ON audit_events (route, ts);
    CREATE INDEX IF NOT EXISTS audit_alerts_sample_request_ids ON audit_alerts USING gin (sample_request_ids);
    CREATE INDEX IF NOT EXISTS audit_security_events_alert_id ON audit_security_events (alert_id);
    ANALYZE audit_events; ANALYZE audit_security_events;`);
  console.log(`indexes and ANALYZE in ${Math.round(performance.now() - started)} ms`);

  await p95('events --sub (page of 100)', () => store.query(parseEventFilter({ sub: `user-${rnd(SUBS)}` })));
  await p95('trace', () => trace(sql, `r-${1 + rnd(N)}`));
  await p95('timeline --sub --since 24h', () => timeline(sql, parseTimelineQuery({ since: '24h', sub: `user-${rnd(SUBS)}` })));
  await p95('timeline --since 24h', () => timeline(sql, parseTimelineQuery({ since: '24h' })), 10);
  await p95('top --by ip --since 24h', () => top(sql, parseTopQuery({ by: 'ip', since: '24h' })), 10);
  await p95('after-revocation --jti', () => afterRevocation(sql, parseAfterRevocationQuery({ jti: `jti-${rnd(N / 1000) * 100}` })));
  await p95('after-revocation --sub', () => afterRevocation(sql, parseAfterRevocationQuery({ sub: `user-${rnd(SUBS / 100) * 100}` })));
} finally {
  // BENCH_INVESTIGATION_KEEP=1 keeps the schema, to look at the plans.
  if (process.env.BENCH_INVESTIGATION_KEEP) console.log(`kept schema ${schema}`);
  else await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await sql.close();
}
