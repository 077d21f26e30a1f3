import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job, type Worker } from 'bullmq';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { AUDIT_JOB, AUDIT_JOB_OPTIONS, AUDIT_QUEUE, type AuditBatch } from '../../common/audit-queue.js';
import { silentLogger } from '../../common/logger.js';
import { connectPatient } from '../../common/redis.js';
import { parseEventFilter } from '../../audit-worker/event-filter.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { openPGlite, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { buildWorker, type AuditJobResult } from '../../audit-worker/worker.js';
import { newWorkerStats, type WorkerStats } from '../../audit-worker/worker-stats.js';
import { auditEvents } from '../helpers/audit-events.js';
import { eventually } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

describe('audit worker', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let dir: string;
  let sql: SqlClient;
  let store: EventStore;
  let connection: Redis;
  let worker: Worker<unknown, AuditJobResult>;
  let queue: Queue;
  let stats: WorkerStats;

  before(async () => {
    redis = await TestRedis.start();
    dir = await mkdtemp(join(tmpdir(), 'audit-worker-'));
    sql = await openPGlite(join(dir, 'db'));
    store = new EventStore(sql);
    await store.migrate();
  });
  after(async () => {
    await sql?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    const prefix = `test-${randomUUID()}`;
    connection = connectPatient(redis.url);
    stats = newWorkerStats();
    worker = buildWorker({ connection, prefix, store, logger: silentLogger(), concurrency: 4, stats });
    queue = new Queue(AUDIT_QUEUE, { connection: { url: redis.url }, prefix });
    await worker.waitUntilReady();
  });
  afterEach(async () => {
    await worker.close();
    await queue.close();
    connection.disconnect();
  });

  /** Waits until the job is completed or failed, and returns it as BullMQ last saw it. */
  const finished = (id: string | undefined) =>
    eventually(async () => {
      // State first, then the job: a job read before it finished would carry no return value.
      const state = await queue.getJobState(id ?? '');
      if (state !== 'completed' && state !== 'failed') return undefined;
      const job = (await queue.getJob(id ?? '')) as Job<unknown, AuditJobResult> | undefined;
      return job ? { job, state } : undefined;
    }, 15_000, `job ${id} to finish`);

  const storedIds = async (sub: string) =>
    (await store.query(parseEventFilter({ sub, limit: '1000' }))).events.map((e) => e.event_id);

  it('stores the events of a batch job', async () => {
    const sub = `user-${randomUUID()}`;
    const batch: AuditBatch = { v: 1, events: auditEvents(3, { sub }) };
    await queue.add(AUDIT_JOB, batch, AUDIT_JOB_OPTIONS);
    const ids = await eventually(async () => {
      const stored = await storedIds(sub);
      return stored.length === 3 ? stored : undefined;
    }, 15_000, 'three stored events');
    expect(ids).to.have.members(batch.events.map((e) => e.event_id));
  });

  it('stores a redelivered batch once and reports the duplicates', async () => {
    const sub = `user-${randomUUID()}`;
    const batch: AuditBatch = { v: 1, events: auditEvents(4, { sub }) };
    const first = await finished((await queue.add(AUDIT_JOB, batch, AUDIT_JOB_OPTIONS)).id);
    const second = await finished((await queue.add(AUDIT_JOB, batch, AUDIT_JOB_OPTIONS)).id);
    expect(first.state).to.equal('completed');
    expect(first.job.returnvalue).to.deep.equal({ stored: 4, duplicates: 0, rejected: 0, set_aside: 0 });
    expect(second.job.returnvalue).to.deep.equal({ stored: 0, duplicates: 4, rejected: 0, set_aside: 0 });
    expect(await storedIds(sub)).to.have.length(4);
  });

  it('fails a malformed job at once, without retries', async () => {
    const added = await queue.add(AUDIT_JOB, { v: 1, events: 'nope' }, AUDIT_JOB_OPTIONS);
    const { job, state } = await finished(added.id);
    expect(state).to.equal('failed');
    expect(job.attemptsMade).to.equal(1);
    expect(job.failedReason).to.match(/^audit_job_malformed/);
  });

  it('stores the good events of a batch and rejects the malformed one', async () => {
    const sub = `user-${randomUUID()}`;
    const good = auditEvents(3, { sub });
    const bad = { ...auditEvents(1, { sub })[0], decision: 'perhaps', password: 'hunter2' };
    const added = await queue.add(AUDIT_JOB, { v: 1, events: [good[0], bad, good[1], good[2]] }, AUDIT_JOB_OPTIONS);
    const { job, state } = await finished(added.id);
    expect(state).to.equal('completed');
    expect(job.returnvalue).to.deep.equal({ stored: 3, duplicates: 0, rejected: 1, set_aside: 0 });
    expect(stats).to.deep.equal({ events_set_aside: 0, events_malformed: 1, events_stored: 3, events_duplicate: 0 });
    expect(await storedIds(sub)).to.have.members(good.map((e) => e.event_id));
  });
});
