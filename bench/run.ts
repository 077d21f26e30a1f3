/**
 * `npm run bench`: the full stack against a bare http-proxy and the upstream itself, in one run,
 * on this machine, with interleaved rounds; prints medians and the ratios the targets are set in.
 * Needs redis-server, PostgreSQL at BENCH_PG_URL (default the machine's `test` database) and,
 * preferably, wrk (else autocannon) and nginx (for the nginx auth_request baseline).
 * BENCH_ROUNDS, BENCH_SECONDS, BENCH_SOAK_REQUESTS, BENCH_INVESTIGATION_EVENTS tune it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../common/net.js';
import { RedisKeys } from '../common/redis-keys.js';
import { anomalyRulesCost, banLatency } from './anomaly.js';
import { auditPipelineRate, storedCountAfterDrain, SYNTHETIC_GATEWAY } from './audit-pipeline.js';
import { throughputCeiling } from './ceiling.js';
import { HAS_WRK, load, type LoadResult } from './load.js';
import { httpAtFixedRate } from './open-loop.js';
import { LiveHeapTrace } from './gc-trace.js';
import { gatewayReplicas } from './gateway-replicas.js';
import { metricsCost } from './metrics-cost.js';
import { poolPickCost } from './pool-pick.js';
import { investigationFigures, printInvestigationFigures } from './investigation.js';
import { HAS_NGINX } from '../scripts/local-balancer.js';
import { startNginxBaseline } from './nginx-baseline.js';
import { clientCpuSeconds, cpuSeconds, cpuSecondsNamed, cpuSecondsWithChildren, meterCpu, rssMiB, type Meter } from './proc-stats.js';
import { BENCH_SECRET, benchConfig, benchToken } from './bench-identity.js';
import { algorithmCosts, decisionCosts, describeAlgorithms, describeCost } from './decision-cost.js';
import { streamDecisions, streamDecisionsAtRate, unaryDecisions } from './sidecar-load.js';
import { start, stopAll, type Running } from './spawn.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SOAK_REQUESTS = Number(process.env.BENCH_SOAK_REQUESTS ?? 1_000_000);
const INVESTIGATION_EVENTS = Number(process.env.BENCH_INVESTIGATION_EVENTS ?? 1_000_000);
const CONNECTIONS = 50;
const FIXED_RATE_SECONDS = Math.min(SECONDS, 5);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PREFIX = `bench${randomUUID().slice(0, 6)}`;

type Target = 'direct' | 'bare' | 'nginx' | 'full' | 'pool';

interface Round {
  target: Target;
  load: LoadResult;
  cpuUsPerRequest: Record<string, number>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const benchStarted = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const schema = `bench_${randomUUID().slice(0, 8)}`;
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    const ports = { redis: await freePort(), upstream: await freePort(), bare: await freePort(), sidecar: await freePort(), audit: await freePort(), gateway: await freePort() };
    const redisUrl = `redis://127.0.0.1:${ports.redis}`;
    writeFileSync(join(dir, 'gateway.yml'), benchConfig(`http://127.0.0.1:${ports.upstream}`, process.env.BENCH_GATEWAY_SETTINGS));
    // BENCH_NODE_OPTIONS (e.g. --max-semi-space-size=64) reaches the product processes, to try V8 flags.
    const nodeOptions: Record<string, string> = process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {};
    const env = { ...nodeOptions, NODE_ENV: 'production', GATEWAY_CONFIG: join(dir, 'gateway.yml'), REDIS_URL: redisUrl, REDIS_PREFIX: PREFIX, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' };
    const redis = await start('redis', ['redis-server', '--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, ports.redis);
    const upstream = await start('upstream', ['scripts/demo-upstream.js'], { DEMO_UPSTREAM_PORT: String(ports.upstream) }, ports.upstream);
    const bare = await start('bare-proxy', ['bench/bare-proxy.js', String(ports.bare), `http://127.0.0.1:${ports.upstream}`], {}, ports.bare);
    const sidecar = await start('sidecar', ['auth-sidecar/main.js'], { ...env, SIDECAR_PORT: String(ports.sidecar), BENCH_SECRET }, ports.sidecar);
    const worker = await start(
      'worker',
      ['audit-worker/main.js'],
      { ...env, AUDIT_PORT: String(ports.audit), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: schema, ADMIN_TOKEN: 'bench-admin-token-0123456789' },
      ports.audit,
    );
    // --trace-gc prints a line per GC (~12 a second under load), to read the live heap during the soak.
    const liveHeap = new LiveHeapTrace();
    const gateway = await start(
      'gateway',
      ['gateway/main.js'],
      { ...env, GATEWAY_PORT: String(ports.gateway), SIDECAR_ADDR: `127.0.0.1:${ports.sidecar}`, AUDIT_SPOOL_DIR: join(dir, 'spool') },
      ports.gateway,
      { nodeArgs: ['--trace-gc'], onStdoutLine: liveHeap.onLine },
    );

    const nginx = HAS_NGINX ? await startNginxBaseline(dir, ports.upstream, redisUrl, BENCH_SECRET) : undefined;
    const targets: Target[] = nginx ? ['direct', 'bare', 'nginx', 'full', 'pool'] : ['direct', 'bare', 'full', 'pool'];

    const token = benchToken('bench-user');
    const headers = { Authorization: `Bearer ${token}` };
    const urls: Record<Target, string> = {
      direct: `http://127.0.0.1:${ports.upstream}/users/1`,
      bare: `http://127.0.0.1:${ports.bare}/users/1`,
      nginx: nginx?.url ?? '',
      full: `http://127.0.0.1:${ports.gateway}/users/1`,
      pool: `http://127.0.0.1:${ports.gateway}/pool/users/1`,
    };
    const meter = (r: Running): Meter => ({ name: r.name, cpu: () => cpuSeconds(r.pid) });
    const postgres: Meter = { name: 'postgres', cpu: () => cpuSecondsNamed('postgres') };
    const client: Meter = { name: 'client', cpu: clientCpuSeconds };
    const measured: Record<Target, Meter[]> = {
      direct: [meter(upstream), client],
      bare: [meter(bare), meter(upstream), client],
      nginx: nginx ? [{ name: 'nginx', cpu: () => cpuSecondsWithChildren(nginx.nginx.pid) }, meter(nginx.auth), meter(redis), meter(upstream), client] : [],
      full: [meter(gateway), meter(sidecar), meter(redis), meter(worker), postgres, meter(upstream), client],
      pool: [meter(gateway), meter(sidecar), meter(redis), meter(worker), postgres, meter(upstream), client],
    };
    // Events of the gateway under load; the pipeline test's synthetic events are counted apart.
    const countWhere = (op: '=' | '<>') => async (): Promise<number> =>
      Number((await db.query(`SELECT count(*) AS n FROM "${schema}".audit_events WHERE gateway_id ${op} $1`, [SYNTHETIC_GATEWAY])).rows[0].n);
    const storedCount = countWhere('<>');

    console.log(`# ts-api-gateway benchmark, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
    if (!nginx) console.log('# nginx is not installed: the nginx auth_request baseline is skipped (Debian: apt-get install nginx-light)');
    console.log(`# client: ${HAS_WRK ? 'wrk -t1' : 'autocannon'} -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved rounds, medians; loopback`);
    let sent = 0; // requests the full stack answered: each must be stored
    for (const target of targets) {
      const warm = await load({ url: urls[target], headers, connections: CONNECTIONS, seconds: 2 });
      if (target === 'full' || target === 'pool') sent += warm.requests;
    }

    const rounds: Round[] = [];
    const lags: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const target of targets) {
        const cpuPerRequest = meterCpu(measured[target]);
        const result = await load({ url: urls[target], headers, connections: CONNECTIONS, seconds: SECONDS });
        const loadEnd = Date.now();
        rounds.push({ target, load: result, cpuUsPerRequest: cpuPerRequest(result.requests) });
        if (target === 'full' || target === 'pool') {
          sent += result.requests;
          await storedCountAfterDrain(storedCount, sent);
          lags.push(Date.now() - loadEnd);
        }
      }
    }
    printThroughput(targets, rounds);
    const peakOf = (target: Target): number => median(rounds.filter((r) => r.target === target).map((r) => r.load.rps));
    const fullPeak = peakOf('full');
    console.log(`\nfull stack / bare http-proxy throughput: ${fmt(fullPeak / peakOf('bare'), 2)}x   (target >= 0.9x)`);
    const gatewayCpu = (target: Target): number => median(rounds.filter((r) => r.target === target).map((r) => r.cpuUsPerRequest['gateway']!));
    const picks = poolPickCost();
    console.log(
      `upstream pool of two targets: gateway CPU ${fmt(gatewayCpu('pool'), 1)} µs/request against ${fmt(gatewayCpu('full'), 1)} with one URL: ${fmt(gatewayCpu('pool') - gatewayCpu('full'), 1)} µs ` +
        `(target < 3 µs; runs differ by ±15 %); the choice itself, in process: ${fmt(picks.two, 0)} ns a request for two weighted targets, ${fmt(picks.one, 0)} ns for one URL`,
    );
    console.log(`metrics: the gateway's per-request metrics, in process: ${fmt(metricsCost(), 0)} ns a request (target < 5 µs)`);
    if (nginx) console.log(`full stack / nginx auth_request + Node JWT + Redis throughput: ${fmt(fullPeak / peakOf('nginx'), 2)}x   (target >= 1x)`);
    console.log(`audit: lag from end of load to last event stored: median ${fmt(median(lags))} ms (target < 1000 ms)`);

    // Latency at half the full stack's peak rate, the same open-loop schedule for both.
    const rate = Math.round(fullPeak / 2);
    const p99s: Record<'direct' | 'bare' | 'full' | 'decision', number[]> = { direct: [], bare: [], full: [], decision: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const t of ['direct', 'bare', 'full', 'decision'] as const) {
        const result =
          t === 'decision'
            ? await streamDecisionsAtRate(`127.0.0.1:${ports.sidecar}`, token, rate, FIXED_RATE_SECONDS)
            : await httpAtFixedRate(urls[t], headers, rate, FIXED_RATE_SECONDS);
        // Reported, not fatal: the rest of the run still measures what it measures.
        if (result.failed > 0) console.log(`! ${result.failed} of ${result.sent} requests failed at ${rate} req/s on ${t}: ${JSON.stringify(result.failures)}`);
        p99s[t].push(result.p99ms);
        if (t === 'full') sent += result.sent;
      }
    }
    const bareP99 = median(p99s.bare);
    const fullP99 = median(p99s.full);
    console.log(`p99 at ${fmt(rate)} req/s (half the full peak, open loop): direct ${fmt(median(p99s.direct), 2)} ms (the client's noise floor), bare ${fmt(bareP99, 2)} ms, full ${fmt(fullP99, 2)} ms, added ${fmt(fullP99 - bareP99, 2)} ms (target <= 2 ms)`);
    console.log(`one sidecar decision alone at ${fmt(rate)}/s (open loop; every request of the full stack waits for one): p99 ${fmt(median(p99s.decision), 2)} ms`);

    // The sidecar alone, over the gateway's stream and over unary calls.
    const perUnit = (cpu: Record<string, number>): string => Object.entries(cpu).map(([name, us]) => `${name} ${fmt(us)}`).join(', ');
    let decisionCpu: Record<string, number> = {};
    for (const [label, drive] of [['CheckStream', streamDecisions], ['unary Check', unaryDecisions]] as const) {
      const cpuPerDecision = meterCpu([meter(sidecar), meter(redis)]);
      const decisions = await drive(`127.0.0.1:${ports.sidecar}`, token, Math.min(SECONDS, 5));
      const cpu = cpuPerDecision(decisions.total);
      if (label === 'CheckStream') decisionCpu = cpu;
      console.log(`sidecar alone (${label}, 50 in flight): ${fmt(decisions.perSecond)} decisions/s, CPU µs/decision: ${perUnit(cpu)}`);
    }

    // One decision's cost on one Redis and on a 3-master cluster, each with a sidecar of its own.
    for (const cost of await decisionCosts(Math.min(SECONDS, 5))) console.log(describeCost(cost));
    for (const line of describeAlgorithms(await algorithmCosts(Math.min(SECONDS, 5)))) console.log(line);

    // The audit pipeline alone: batches straight into the queue, timed until stored.
    const pipeline = await auditPipelineRate(redisUrl, new RedisKeys(PREFIX).queuePrefix, countWhere('='), fullPeak, [meter(worker), postgres, meter(redis)]);
    console.log(`audit pipeline alone: ${fmt(pipeline.perSecond)} events/s into PostgreSQL = ${fmt(pipeline.perSecond / fullPeak, 1)}x the gateway's peak (target >= 4x); CPU µs/event: ${perUnit(pipeline.cpuUsPerEvent)}`);

    // The anomaly rules: their own cost per event, and a ban's delay through the stack.
    for (const cost of await anomalyRulesCost(redisUrl, redis.pid)) {
      console.log(`anomaly rules (default config, in process, 100,000 events), ${cost.mix}: CPU µs/event: worker ${fmt(cost.workerUs, 1)}, redis ${fmt(cost.redisUs, 1)} (target: worker <= 10)`);
    }
    const incidentToken = () => benchToken('bench-ban');
    const bans = await banLatency(urls.full.replace('/users/1', ''), incidentToken);
    sent += bans.requests;
    console.log(`anomaly ban: from the 30th refused token's answer to the ban refusing that address, over ${bans.ms.length} incidents: median ${fmt(median(bans.ms))} ms, max ${fmt(Math.max(...bans.ms))} ms (target <= 2000 ms)`);

    // 1 gateway against 2, both behind the same local balancer.
    const replicas = await gatewayReplicas({
      dir,
      first: gateway,
      firstPort: ports.gateway,
      gatewayEnv: { ...env, SIDECAR_ADDR: `127.0.0.1:${ports.sidecar}`, AUDIT_SPOOL_DIR: join(dir, 'spool') },
      others: [meter(sidecar), meter(redis), meter(worker), postgres, meter(upstream)],
      headers,
      connections: CONNECTIONS,
      seconds: SECONDS,
      rounds: ROUNDS,
    });
    sent += replicas.requests;
    for (const count of [1, 2] as const) {
      const mine = replicas.rounds.filter((r) => r.gateways === count);
      const names = Object.keys(mine[0]!.cpuUsPerRequest);
      console.log(
        `${count} gateway${count === 1 ? ' ' : 's'} behind ${replicas.balancer}: ${fmt(median(mine.map((r) => r.rps)))} req/s (${mine.map((r) => fmt(r.rps)).join(', ')}), p99 ${fmt(median(mine.map((r) => r.p99ms)), 2)} ms, ` +
          `non-2xx ${mine.reduce((n, r) => n + r.non2xx, 0)}; CPU µs/request: ${names.map((n) => `${n} ${fmt(median(mine.map((r) => r.cpuUsPerRequest[n]!)))}`).join(', ')}`,
      );
    }
    const replicaRps = (count: 1 | 2) => median(replicas.rounds.filter((r) => r.gateways === count).map((r) => r.rps));
    console.log(`2 gateways / 1 gateway throughput on ${cpus().length} cores: ${fmt(replicaRps(2) / replicaRps(1), 2)}x`);

    // What the machine allows at best: each part of a request at the cost it has alone.
    const bareCpu = (name: string): number => median(rounds.filter((r) => r.target === 'bare').map((r) => r.cpuUsPerRequest[name]!));
    const parts: Record<string, number> = {
      'proxying (bare proxy)': bareCpu('bare-proxy'),
      upstream: bareCpu('upstream'),
      client: bareCpu('client'),
      ...labelled(decisionCpu, 'decide'),
      ...labelled(pipeline.cpuUsPerEvent, 'audit'),
    };
    const ceiling = throughputCeiling(parts, bareCpu('bare-proxy'), cpus().length);
    console.log(
      `full stack ceiling on ${cpus().length} cores, each part at its cost alone (${Object.entries(parts).map(([n, us]) => `${n} ${fmt(us)}`).join(' + ')} = ${fmt(ceiling.usPerRequest)} µs/request): ` +
        `${fmt(ceiling.requestsPerSecond)} req/s = ${fmt(ceiling.requestsPerSecond / peakOf('bare'), 2)}x bare` + (nginx ? `, ${fmt(ceiling.requestsPerSecond / peakOf('nginx'), 2)}x nginx` : ''),
    );

    // Gateway memory over a long run: RSS sampled every 250 ms while it serves SOAK_REQUESTS in
    // about ten chunks; each chunk is summarized by the median of its samples, since a single
    // sample swings ±15 % with the GC's heap growing and shrinking.
    const chunkSeconds = Math.max(1, Math.ceil(SOAK_REQUESTS / fullPeak / 10));
    const chunkMedians: number[] = [];
    let soaked = 0;
    let soakErrors = 0;
    let soakSeconds = 0;
    const markCompactsBefore = liveHeap.afterMarkCompact.length;
    while (soaked < SOAK_REQUESTS) {
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssMiB(gateway.pid)), 250);
      // The last chunk serves only what is left, at the rate seen so far, rather than a whole tenth.
      const rate = soaked > 0 ? soaked / soakSeconds : fullPeak;
      const seconds = Math.max(1, Math.min(chunkSeconds, Math.ceil((SOAK_REQUESTS - soaked) / rate)));
      const part = await load({ url: urls.full, headers, connections: CONNECTIONS, seconds });
      soakSeconds += seconds;
      clearInterval(sampler);
      soaked += part.requests;
      soakErrors += part.non2xx;
      chunkMedians.push(median(samples.length > 0 ? samples : [rssMiB(gateway.pid)]));
    }
    const third = Math.max(1, Math.floor(chunkMedians.length / 3));
    const early = median(chunkMedians.slice(0, third));
    const late = median(chunkMedians.slice(-third));
    console.log(
      `gateway RSS over ${fmt(soaked)} requests (MiB, median of each chunk): ${chunkMedians.map((m) => fmt(m, 0)).join(' ')}; ` +
        `last third vs first third ${fmt(((late - early) / early) * 100, 1)} % (target within ±10 %); non-2xx: ${soakErrors}`,
    );
    const live = liveHeap.afterMarkCompact.slice(markCompactsBefore);
    if (live.length >= 3) {
      const liveThird = Math.floor(live.length / 3);
      const [liveEarly, liveLate] = [median(live.slice(0, liveThird)), median(live.slice(-liveThird))];
      console.log(
        `gateway live heap after each of ${live.length} mark-compacts in that run: ${fmt(Math.min(...live), 1)}–${fmt(Math.max(...live), 1)} MB; ` +
          `last third vs first third ${fmt(((liveLate - liveEarly) / liveEarly) * 100, 1)} % (grows if something leaks)`,
      );
    }
    sent += soaked;
    const stored = await storedCountAfterDrain(storedCount, sent);
    // wrk does not count requests cut off when a run ends, though the gateway may have answered them.
    console.log(`audit: ${fmt(stored)} events stored for ${fmt(sent)} requests the clients saw answered: none lost`);

    // The investigation questions over a million stored events, and what sealing and rolling them up costs.
    const investigation = await investigationFigures(PG_URL, INVESTIGATION_EVENTS, postgres.cpu);
    printInvestigationFigures(investigation);
    const storeUs = { worker: pipeline.cpuUsPerEvent.worker! + investigation.seal.workerUsPerEvent, postgres: pipeline.cpuUsPerEvent.postgres! + investigation.seal.postgresUsPerEvent };
    console.log(
      `audit store, CPU µs per stored event (insert through the queue, then seal and roll up): worker ${fmt(storeUs.worker, 1)}, PostgreSQL ${fmt(storeUs.postgres, 1)} ` +
        `(target: no worse than worker 26 + PostgreSQL 73, measured before the chain, partitions and rollup)`,
    );
    console.log(`finished in ${fmt((Date.now() - benchStarted) / 1000)} s`);
  } finally {
    await stopAll();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `{ redis: 14 }` → `{ 'redis (decide)': 14 }`: one process's CPU for two jobs stays two parts. */
function labelled(cpu: Record<string, number>, job: string): Record<string, number> {
  return Object.fromEntries(Object.entries(cpu).map(([name, us]) => [`${name} (${job})`, us]));
}

function printThroughput(targets: Target[], rounds: Round[]): void {
  console.log('\ntarget   req/s (rounds)                      p50 ms   p99 ms   non-2xx   CPU µs/request by process');
  for (const target of targets) {
    const mine = rounds.filter((r) => r.target === target);
    const names = Object.keys(mine[0]!.cpuUsPerRequest);
    const cpu = names.map((n) => `${n} ${fmt(median(mine.map((r) => r.cpuUsPerRequest[n]!)))}`).join(', ');
    console.log(
      `${target.padEnd(8)} ${fmt(median(mine.map((r) => r.load.rps))).padStart(7)} (${mine.map((r) => fmt(r.load.rps)).join(', ')})`.padEnd(45) +
        `${fmt(median(mine.map((r) => r.load.p50ms)), 2).padStart(7)}  ${fmt(median(mine.map((r) => r.load.p99ms)), 2).padStart(7)}  ${String(mine.reduce((s, r) => s + r.load.non2xx, 0)).padStart(8)}   ${cpu}`,
    );
  }
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
