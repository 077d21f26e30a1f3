/**
 * The audit trail through Redis outages, on the built processes: two gateways under steady load
 * from 10 clients, a sidecar, a worker on the machine's PostgreSQL, and a Redis with an fsynced
 * append-only file that is SIGKILLed at random moments (some back to back, some long after
 * start). Every request a client saw answered must be stored exactly once.
 *
 * `npm test` runs CHAOS_KILLS=10 (the default); `npm run chaos` runs the long loop. The figures
 * (time from Redis back to empty spools, and to every earlier answer stored) are printed.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import { eventually, freePort } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { ProductProcess } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis-server.js';
import { addTraffic, recordCase } from './report.js';

const KILLS = Number(process.env.CHAOS_KILLS ?? 10);
const CLIENTS = 10;
/** Pause between two requests of one client: ~10 × 40 req/s, a steady load that leaves the CPU to the stack. */
const PACE_MS = 25;
/** After the load stops, how long every answered request may take to be stored. */
const SETTLE_MS = 30_000;
/** Redis up time within which every answered request must be stored (outages not counted). */
const STORED_WITHIN_MS = 10_000;
const SECRET = 'chaos-secret-that-is-long-enough-0123456789';

interface Answered {
  status: number;
  answeredAt: number;
  storedAt?: number;
}

interface Outage {
  killedAt: number;
  backAt: number;
  /** From Redis back to both spools empty; undefined when the next kill came first. */
  spoolEmptyMs?: number;
}

const random = (min: number, max: number): number => min + Math.random() * (max - min);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

/** The part of [from, to] during which Redis was up. */
function upTimeBetween(outages: Outage[], from: number, to: number): number {
  let up = to - from;
  for (const o of outages) up -= Math.max(0, Math.min(to, o.backAt) - Math.max(from, o.killedAt));
  return up;
}

describe(`audit events through ${KILLS} Redis kills under load`, function () {
  this.timeout(KILLS * 10_000 + 120_000);
  let dir: string;
  let redis: TestRedis;
  let upstream: Server;
  let schema: string;
  let db: pg.Client;
  const processes: ProductProcess[] = [];
  const gatewayUrls: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-chaos-'));
    redis = await TestRedis.start({ aofDir: dir });
    upstream = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    writeFileSync(
      join(dir, 'gateway.yml'),
      `
issuers:
  - { name: chaos, iss: chaos-issuer, algorithms: [HS256], secret_env: CHAOS_SECRET }
tiers:
  free: { second: 1000000 }
routes:
  - { name: open, paths: [/open], upstream: "${upstreamUrl}", auth: none }
  - { name: users, paths: [/users], upstream: "${upstreamUrl}", rate_limit: { by: consumer } }
`,
    );
    schema = uniqueSchema('chaos');
    db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const env = { NODE_ENV: 'test', GATEWAY_CONFIG: join(dir, 'gateway.yml'), REDIS_URL: redis.url, REDIS_PREFIX: `chaos${randomUUID().slice(0, 6)}`, LOG_LEVEL: 'warn' };
    const sidecarPort = await freePort();
    processes.push(await ProductProcess.start('auth-sidecar', 'auth-sidecar/main.js', { ...env, SIDECAR_PORT: String(sidecarPort), CHAOS_SECRET: SECRET }, sidecarPort));
    const auditPort = await freePort();
    processes.push(
      await ProductProcess.start('audit-worker', 'audit-worker/main.js', { ...env, AUDIT_PORT: String(auditPort), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: schema }, auditPort),
    );
    // No GATEWAY_ID, one spool root: the default ids must keep the two gateways' spools apart.
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const gatewayEnv = { ...env, GATEWAY_PORT: String(port), SIDECAR_ADDR: `127.0.0.1:${sidecarPort}`, AUDIT_SPOOL_DIR: join(dir, 'spool') };
      processes.push(await ProductProcess.start(`gateway-${i}`, 'gateway/main.js', gatewayEnv, port));
      gatewayUrls.push(`http://127.0.0.1:${port}`);
    }
  });

  after(async () => {
    for (const p of processes.reverse()) await p.kill();
    await redis?.stop();
    upstream?.close();
    await db?.end();
    if (schema) await dropSchema(schema);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const p of processes) console.error(`--- ${p.name}\n${p.output.join('').slice(-6000)}`);
  });

  it('stores every answered request exactly once, however often Redis dies', async () => {
    const answered = new Map<string, Answered>();
    const outages: Outage[] = [];
    const token = jwt.sign({ sub: 'carol' }, SECRET, { algorithm: 'HS256', issuer: 'chaos-issuer', expiresIn: 3600 });
    let loading = true;
    let sent = 0;

    const client = async (n: number): Promise<void> => {
      while (loading) {
        const requestId = `chaos-${randomUUID()}`;
        const gateway = gatewayUrls[(n + sent++) % gatewayUrls.length];
        const path = sent % 2 ? '/open/x' : '/users/x';
        try {
          const res = await fetch(`${gateway}${path}`, { headers: { 'X-Request-Id': requestId, Authorization: `Bearer ${token}` } });
          await res.arrayBuffer();
          answered.set(requestId, { status: res.status, answeredAt: Date.now() });
        } catch {
          // Not answered (connection broken): it may or may not leave an event, and must not leave two.
        }
        await pause(PACE_MS);
      }
    };

    /** Ids answered but not yet seen in the store, checked in one query a pass. */
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const pending = [...answered].filter(([, a]) => a.storedAt === undefined).map(([id]) => id);
        if (pending.length > 0) {
          const { rows } = await db.query<{ request_id: string }>(`SELECT request_id FROM "${schema}".audit_events WHERE request_id = ANY($1)`, [pending]);
          const now = Date.now();
          for (const { request_id } of rows) (answered.get(request_id) as Answered).storedAt = now;
        }
        await pause(200);
      }
    })();

    const spoolsEmpty = async (): Promise<boolean> => {
      const reports = await Promise.all(gatewayUrls.map(async (url) => (await (await fetch(`${url}/__gateway/health`)).json()) as { spool: { batches: number } }));
      return reports.every((r) => r.spool.batches === 0);
    };

    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
    await pause(random(1_000, 2_000));
    for (let kill = 0; kill < KILLS; kill++) {
      const killedAt = Date.now();
      await redis.stop();
      await pause(random(200, 3_000));
      await redis.resume();
      const outage: Outage = { killedAt, backAt: Date.now() };
      outages.push(outage);
      // Up for a while; about one outage in four follows the last one back to back.
      const upUntil = Date.now() + (Math.random() < 0.25 ? random(50, 300) : random(1_000, 4_000));
      while (Date.now() < upUntil) {
        if (outage.spoolEmptyMs === undefined && (await spoolsEmpty())) outage.spoolEmptyMs = Date.now() - outage.backAt;
        await pause(50);
      }
    }
    await pause(1_000);
    loading = false;
    await Promise.all(clients);

    await eventually(() => ([...answered.values()].every((a) => a.storedAt !== undefined) ? true : undefined), SETTLE_MS, 'every answered request to be stored').catch(
      () => undefined,
    );
    polling = false;
    await poller;

    const { rows: counts } = await db.query<{ request_id: string; n: number; status: number }>(
      `SELECT request_id, count(*)::int AS n, min(status) AS status FROM "${schema}".audit_events GROUP BY request_id`,
    );
    const stored = new Map(counts.map((r) => [r.request_id, r]));
    const missing = [...answered.keys()].filter((id) => !stored.has(id));
    const duplicated = counts.filter((r) => r.n > 1);
    const wrongStatus = [...answered].filter(([id, a]) => stored.has(id) && stored.get(id)?.status !== a.status);

    // From Redis back to every request answered before that outage stored (outages the next one cut short excluded).
    const recoveries: number[] = [];
    outages.forEach((outage, i) => {
      const before = [...answered.values()].filter((a) => a.answeredAt < outage.killedAt && a.storedAt !== undefined);
      const latest = Math.max(outage.backAt, ...before.map((a) => a.storedAt as number));
      const next = outages[i + 1];
      if (!next || latest < next.killedAt) recoveries.push(latest - outage.backAt);
    });
    // Per request, how long Redis was up between its answer and its storing: what the audit
    // pipeline took, outages not counted (the stalled-job recovery of an orphaned job shows here).
    const upDelays = [...answered.values()].filter((a) => a.storedAt !== undefined).map((a) => upTimeBetween(outages, a.answeredAt, a.storedAt as number));
    const slowest = Math.max(...upDelays);
    const spoolTimes = outages.map((o) => o.spoolEmptyMs).filter((t): t is number => t !== undefined);
    const statuses = new Map<number, number>();
    for (const a of answered.values()) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    console.log(
      `      chaos: ${KILLS} Redis kills, ${answered.size} requests answered (${[...statuses].map(([s, n]) => `${n} × ${s}`).join(', ')}), ` +
        `${counts.length} stored, ${missing.length} missing, ${duplicated.length} duplicated\n` +
        `      Redis back -> both spools empty: median ${median(spoolTimes)} ms, max ${Math.max(...spoolTimes)} ms (${spoolTimes.length} of ${KILLS} outages measured)\n` +
        `      Redis back -> every earlier answer stored: median ${median(recoveries)} ms, max ${Math.max(...recoveries)} ms (${recoveries.length} outages)\n` +
        `      answer -> stored, Redis up time only: median ${median(upDelays)} ms, max ${slowest} ms`,
    );

    recordCase({
      kind: 'fault',
      name: `Redis SIGKILLed ${KILLS}x under load, 2 gateways`,
      expected: `every answer stored once, within ${STORED_WITHIN_MS / 1000} s of Redis up time`,
      observed: `${missing.length} lost, ${duplicated.length} doubled, ${wrongStatus.length} wrong status, slowest ${slowest} ms`,
      pass: missing.length === 0 && duplicated.length === 0 && wrongStatus.length === 0 && slowest <= STORED_WITHIN_MS,
    });
    addTraffic({ answered: answered.size, stored: answered.size - missing.length, lost: missing.length, duplicated: duplicated.length });
    expect(answered.size).to.be.above(KILLS * 20);
    expect([...statuses.keys()]).to.include.members([200, 503]);
    expect(missing, `${missing.length} answered requests never stored, e.g. ${missing.slice(0, 3).join(', ')}`).to.deep.equal([]);
    expect(duplicated).to.deep.equal([]);
    expect(wrongStatus).to.deep.equal([]);
    expect(slowest, 'Redis up time between an answer and its event stored').to.be.at.most(STORED_WITHIN_MS);
  });
});
