/**
 * Security events end to end inside the worker: the store on PostgreSQL and PGlite, `security`
 * jobs through real BullMQ and Redis (malformed jobs and events, unknown job names), the query
 * route, and listBans() over real Redis keys.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job, type Worker } from 'bullmq';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { buildQueryApi } from '../../audit-worker/query-api.js';
import { parseSecurityEventFilter } from '../../audit-worker/security-event-filter.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { SecurityEventStore } from '../../audit-worker/store/security-event-store.js';
import { openPGlite, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { buildWorker, type AuditJobResult } from '../../audit-worker/worker.js';
import { newWorkerStats, type WorkerStats } from '../../audit-worker/worker-stats.js';
import { AUDIT_JOB_OPTIONS, AUDIT_QUEUE, SECURITY_JOB } from '../../common/audit-queue.js';
import { silentLogger } from '../../common/logger.js';
import { connectPatient } from '../../common/redis.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { securityEvent, type SecurityEvent, type SecurityEventInput } from '../../common/security-event.js';
import { publishSecurityEvents } from '../../common/security-publisher.js';
import { ban, listBans, revokeConsumer, revokeJti } from '../../common/security-state.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';


/** An event at `at` (ms), overriding the builder's inputs. */
function event(at: number, input: Partial<SecurityEventInput> = {}): SecurityEvent {
  return securityEvent({ kind: 'ban', actor: 'admin-cli:ops', target: { ip: '203.0.113.9' }, reason: 'credential stuffing', ttlSeconds: 600, now: () => at, ...input });
}

for (const backend of STORE_BACKENDS) {
  describe(`security event store (${backend.name})`, function () {
    this.timeout(60_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let store: SecurityEventStore;
    const t0 = Date.parse('2026-01-02T03:00:00.000Z');
    const events = [
      event(t0),
      event(t0 + 1000, { kind: 'unban', ttlSeconds: undefined, reason: 'false positive' }),
      event(t0 + 2000, { kind: 'ban', actor: 'rule:auth_failure_burst', target: { ip: '198.51.100.1' }, alertId: randomUUID() }),
      event(t0 + 3000, { kind: 'revoke', target: { jti: 'jti-1' }, ttlSeconds: 86400, reason: 'leaked in a ticket' }),
      event(t0 + 4000, { kind: 'ban', target: { consumer: 'demo:mallory' }, ttlSeconds: undefined, reason: 'abuse' }),
    ];

    before(async () => {
      ({ sql, cleanup } = await backend.open());
      await new EventStore(sql).migrate();
      store = new SecurityEventStore(sql);
    });
    after(async () => {
      await cleanup?.();
    });

    it('is created by the migration, stores events once by event_id and gives them back as written, newest first', async () => {
      await new EventStore(sql).migrate(); // twice: idempotent
      expect(await store.insert(events)).to.equal(5);
      expect(await store.insert([events[0]!, event(t0 + 5000, { reason: 'again' })])).to.equal(1);
      const all = await store.query(parseSecurityEventFilter({ since: '2026-01-02T03:00:00Z', limit: '1000' }));
      expect(all.slice(1)).to.deep.equal([...events].reverse());
      expect(all[0]!.reason).to.equal('again');
    });

    it('filters by kind, subject, actor, since and limit', async () => {
      const q = async (query: Record<string, string>) => (await store.query(parseSecurityEventFilter(query))).map((e) => e.event_id);
      expect(await q({ kind: 'unban' })).to.deep.equal([events[1]!.event_id]);
      expect(await q({ kind: 'revoke', subject: 'jti-1' })).to.deep.equal([events[3]!.event_id]);
      expect(await q({ actor: 'rule:auth_failure_burst' })).to.deep.equal([events[2]!.event_id]);
      expect(await q({ subject: '203.0.113.9', since: '2026-01-02T03:00:01Z' })).to.have.length(2); // the unban and 'again'
      expect(await q({ limit: '2' })).to.have.length(2);
      expect(await q({ subject: 'nobody' })).to.deep.equal([]);
    });
  });
}

describe('security jobs in the audit worker, and GET /v1/security-events', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let dir: string;
  let sql: SqlClient;
  let store: SecurityEventStore;
  let connection: Redis;
  let worker: Worker<unknown, AuditJobResult>;
  let queue: Queue;
  let prefix: string;
  let stats: WorkerStats;
  let capture: ReturnType<typeof captureLogger>;

  before(async () => {
    redis = await TestRedis.start();
    dir = await mkdtemp(join(tmpdir(), 'security-worker-'));
    sql = await openPGlite(join(dir, 'db'));
    const events = new EventStore(sql);
    await events.migrate();
    store = new SecurityEventStore(sql);
    prefix = `test-${randomUUID()}`;
    connection = connectPatient(redis.url);
    stats = newWorkerStats();
    capture = captureLogger();
    worker = buildWorker({ connection, prefix, store: events, security: store, logger: capture.logger, concurrency: 2, stats });
    queue = new Queue(AUDIT_QUEUE, { connection: { url: redis.url }, prefix });
    await worker.waitUntilReady();
  });
  after(async () => {
    await worker?.close();
    await queue?.close();
    connection?.disconnect();
    await sql?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const finished = (id: string | undefined) =>
    eventually(async () => {
      const state = await queue.getJobState(id ?? '');
      if (state !== 'completed' && state !== 'failed') return undefined;
      const job = (await queue.getJob(id ?? '')) as Job<unknown, AuditJobResult> | undefined;
      return job ? { job, state } : undefined;
    }, 15_000, `job ${id} to finish`);

  const storedBySubject = async (subject: string) => store.query(parseSecurityEventFilter({ subject }));

  it('stores the events the publisher puts on the queue, once however often published', async () => {
    const subject = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    const published = [event(Date.now(), { target: { ip: subject } }), event(Date.now() + 1, { kind: 'unban', target: { ip: subject }, ttlSeconds: undefined })];
    const publisher = new Redis(redis.url);
    try {
      await publishSecurityEvents(publisher, prefix, published);
      // A second publish of the same events (a retry) is the same job; a new job with them stores nothing new.
      await publishSecurityEvents(publisher, prefix, published);
    } finally {
      publisher.disconnect();
    }
    const stored = await eventually(async () => {
      const found = await storedBySubject(subject);
      return found.length === 2 ? found : undefined;
    }, 15_000, 'two stored security events');
    expect(stored).to.deep.equal([...published].reverse());
    const again = await finished((await queue.add(SECURITY_JOB, { v: 1, events: published }, AUDIT_JOB_OPTIONS)).id);
    expect(again.job.returnvalue).to.deep.equal({ stored: 0, duplicates: 2, rejected: 0, set_aside: 0 });
    expect(capture.lines.filter((l) => l.code === 'security_event' && l.subject === subject).map((l) => l.kind)).to.include.members(['ban', 'unban']);
  });

  it('fails a malformed security job at once, without retries', async () => {
    for (const data of [{ v: 2, events: [event(Date.now())] }, { v: 1, events: [] }, { v: 1, events: 'nope' }, null]) {
      const { job, state } = await finished((await queue.add(SECURITY_JOB, data, AUDIT_JOB_OPTIONS)).id);
      expect(state, JSON.stringify(data)).to.equal('failed');
      expect(job.attemptsMade).to.equal(1);
      expect(job.failedReason).to.match(/^security_job_malformed: /);
    }
    const dropped = await eventually(() => capture.lines.filter((l) => l.code === 'security_job_malformed').length >= 4 || undefined, 5_000, 'four dropped-job lines');
    expect(dropped).to.equal(true);
  });

  it('stores the good events of a security job and rejects the malformed one alone, logging where, not what', async () => {
    const subject = `bad-batch-${randomUUID()}`;
    const good = [event(Date.now(), { target: { consumer: subject } }), event(Date.now() + 1, { kind: 'revoke', target: { consumer: subject } })];
    const secret = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
    const bad = { ...event(Date.now()), reason: `pasted ${secret}` };
    const before = stats.events_malformed;
    const { job, state } = await finished((await queue.add(SECURITY_JOB, { v: 1, events: [good[0], bad, good[1]] }, AUDIT_JOB_OPTIONS)).id);
    expect(state).to.equal('completed');
    expect(job.returnvalue).to.deep.equal({ stored: 2, duplicates: 0, rejected: 1, set_aside: 0 });
    expect(stats.events_malformed - before).to.equal(1);
    expect((await storedBySubject(subject)).map((e) => e.event_id)).to.have.members(good.map((e) => e.event_id));
    const line = capture.lines.find((l) => l.code === 'security_event_malformed' && l.event_id === bad.event_id);
    expect(line).to.deep.include({ index: 1, issues: ['reason:custom'] });
    expect(JSON.stringify(capture.lines)).not.to.include(secret);
  });

  it('fails a job of an unknown name at once with audit_job_unknown', async () => {
    const { job, state } = await finished((await queue.add('mystery\n', { v: 1, events: [event(Date.now())] }, AUDIT_JOB_OPTIONS)).id);
    expect(state).to.equal('failed');
    expect(job.attemptsMade).to.equal(1);
    expect(job.failedReason).to.equal('audit_job_unknown: no job named "mystery?" on this queue (expected events or security)');
    await eventually(() => capture.lines.find((l) => l.code === 'audit_job_unknown'), 5_000, 'the dropped-job line');
  });

  describe('GET /v1/security-events', () => {
    const TOKEN = 'test-admin-token-0123456789';
    let server: Server;
    let base: string;
    const get = (path: string, token?: string) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    before(async () => {
      server = buildQueryApi({ store: new EventStore(sql), security: store, adminToken: TOKEN, logger: silentLogger() }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server?.close();
    });

    it('answers the matching events to the admin token, newest first', async () => {
      const subject = `api-${randomUUID()}`;
      const events = [event(Date.now() - 2000, { target: { consumer: subject } }), event(Date.now() - 1000, { kind: 'unban', target: { consumer: subject }, ttlSeconds: undefined })];
      await store.insert(events);
      const res = await get(`/v1/security-events?subject=${subject}&since=1h`, TOKEN);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ events: [...events].reverse() });
      const unbans = (await (await get(`/v1/security-events?subject=${subject}&kind=unban&actor=admin-cli:ops`, TOKEN)).json()) as { events: SecurityEvent[] };
      expect(unbans.events.map((e) => e.event_id)).to.deep.equal([events[1]!.event_id]);
    });

    it('refuses a request without the admin token', async () => {
      expect((await get('/v1/security-events')).status).to.equal(401);
      expect((await get('/v1/security-events', 'wrong')).status).to.equal(401);
    });

    it('refuses bad parameters with 400 naming them', async () => {
      const cases: [string, string][] = [
        ['kind=mute', 'kind: Invalid option: expected one of "ban"|"unban"|"revoke"|"admin_query"|"limit_set"|"limit_clear"|"user_add"|"user_enable"'],
        ['since=yesterday', 'since: must be an ISO timestamp with offset (2025-01-02T03:04:05Z) or a duration such as 30s, 15m, 1h, 7d'],
        ['limit=0', 'limit: Too small: expected number to be >=1'],
        ['subject=', 'subject: must not be empty'],
        ['rule=x', 'unknown parameter: rule'],
      ];
      for (const [query, error] of cases) {
        const res = await get(`/v1/security-events?${query}`, TOKEN);
        expect(res.status, query).to.equal(400);
        expect(await res.json(), query).to.deep.equal({ error, reason: 'bad_request' });
      }
    });
  });
});

describe('listBans over Redis', function () {
  this.timeout(30_000);
  let server: TestRedis;
  let redis: Redis;
  let keys: RedisKeys;

  before(async () => {
    server = await TestRedis.start();
    redis = new Redis(server.url);
    keys = new RedisKeys(`lb${randomUUID().slice(0, 8)}`);
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('lists ip, consumer and jti bans with reason, actor, since and until; not consumer revocations nor other prefixes', async () => {
    const now = Date.now();
    await ban(redis, keys, { ip: '2001:db8::1' }, 'scanner', 3600, 'admin-cli:ops');
    await ban(redis, keys, { consumer: 'demo:mallory' }, 'abuse', undefined, 'admin-cli:ops');
    await ban(redis, keys, { jti: 'jti-banned' }, 'stolen', 600, 'rule:revoked_token_use');
    await revokeJti(redis, keys, 'jti-revoked', now / 1000 + 120, 'leaked', 'admin-cli:ops');
    await redis.set(keys.revokedJti('jti-legacy'), '1', 'EX', 60); // written before records were kept
    await revokeConsumer(redis, keys, 'demo:rita');
    await ban(redis, new RedisKeys('other'), { ip: '10.0.0.1' }, 'another prefix');
    // Enough keys of other kinds that SCAN needs several calls.
    const filler = redis.pipeline();
    for (let i = 0; i < 3000; i++) filler.set(keys.rateCounter('tier:free', [`ip:${i}`], 'second'), '1');
    await filler.exec();

    const bans = await listBans(redis, keys, () => now);
    expect(bans.map((b) => `${b.kind}:${b.subject}`)).to.deep.equal(['ip:2001:db8::1', 'consumer:demo:mallory', 'jti:jti-banned', 'jti:jti-legacy', 'jti:jti-revoked']);
    const [ip, consumer, jti, legacy, revoked] = bans;
    expect(ip).to.include({ reason: 'scanner', by: 'admin-cli:ops' });
    expect(Date.parse(ip!.until!) - now).to.be.within(3590_000, 3600_000);
    expect(Date.parse(ip!.since!)).to.be.within(now - 1000, Date.now());
    expect(consumer).to.include({ reason: 'abuse', until: null });
    expect(jti).to.include({ reason: 'stolen', by: 'rule:revoked_token_use' });
    expect(legacy).to.include({ reason: null, by: null, since: null });
    expect(legacy!.until).to.be.a('string');
    expect(revoked).to.include({ reason: 'leaked', by: 'admin-cli:ops' });
  });
});
