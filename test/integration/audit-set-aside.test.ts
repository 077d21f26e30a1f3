/**
 * One event PostgreSQL refuses (a NUL in a string: jsonb cannot hold \u0000) must not sink the
 * batch it travels in: the real worker, a real redis-server and the machine's PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { Queue, type Job, type Worker } from 'bullmq';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { AUDIT_JOB, AUDIT_JOB_OPTIONS, AUDIT_QUEUE, type AuditBatch } from '../../common/audit-queue.js';
import { connectPatient } from '../../common/redis.js';
import { parseEventFilter } from '../../audit-worker/event-filter.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { buildWorker, type AuditJobResult } from '../../audit-worker/worker.js';
import { newWorkerStats, type WorkerStats } from '../../audit-worker/worker-stats.js';
import { auditEvent, auditEvents } from '../helpers/audit-events.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { TestRedis } from '../helpers/redis-server.js';

describe('audit worker on PostgreSQL, with an event the database refuses', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let schema: string;
  let sql: SqlClient;
  let store: EventStore;
  let connection: Redis;
  let worker: Worker<unknown, AuditJobResult>;
  let queue: Queue;
  let stats: WorkerStats;
  const capture = captureLogger();

  before(async () => {
    redis = await TestRedis.start();
    schema = uniqueSchema('audit_set_aside');
    sql = await openPostgres(PG_URL, schema);
    store = new EventStore(sql);
    await store.migrate();
    const prefix = `test-${randomUUID()}`;
    connection = connectPatient(redis.url);
    stats = newWorkerStats();
    worker = buildWorker({ connection, prefix, store, logger: capture.logger, concurrency: 4, stats });
    queue = new Queue(AUDIT_QUEUE, { connection: { url: redis.url }, prefix });
    await worker.waitUntilReady();
  });
  after(async () => {
    await worker?.close();
    await queue?.close();
    connection?.disconnect();
    await sql?.close();
    if (schema) await dropSchema(schema);
    await redis?.stop();
  });

  /** The job once it completed, failed, or was put back for a retry (delayed). */
  const settled = (id: string | undefined) =>
    eventually(async () => {
      const state = await queue.getJobState(id ?? '');
      if (state !== 'completed' && state !== 'failed' && state !== 'delayed') return undefined;
      const job = (await queue.getJob(id ?? '')) as Job<unknown, AuditJobResult> | undefined;
      return job ? { job, state } : undefined;
    }, 15_000, `job ${id} to settle`);

  it('stores the 20 other events of a batch of 21, sets the one with a NUL in jti aside, and completes the job', async () => {
    const sub = `user-${randomUUID()}`;
    const good = auditEvents(20, { sub });
    const poisoned = auditEvent({ sub, jti: 'x\u0000y' });
    const events = [...good.slice(0, 13), poisoned, ...good.slice(13)];
    const batch: AuditBatch = { v: 1, events };

    const { job, state } = await settled((await queue.add(AUDIT_JOB, batch, AUDIT_JOB_OPTIONS)).id);

    expect(state, job.failedReason).to.equal('completed');
    expect(job.attemptsMade).to.equal(1);
    expect(job.returnvalue).to.deep.equal({ stored: 20, duplicates: 0, rejected: 0, set_aside: 1 });
    const stored = await store.query(parseEventFilter({ sub, limit: '1000' }));
    expect(stored.events.map((e) => e.event_id)).to.have.members(good.map((e) => e.event_id));

    const { rows } = await sql.query<{ event_id: string; request_id: string; error_code: string; raw: string; rejected_at: Date }>(
      'SELECT event_id, request_id, error_code, raw, rejected_at FROM audit_events_rejected WHERE event_id = $1',
      [poisoned.event_id],
    );
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ event_id: poisoned.event_id, request_id: poisoned.request_id, error_code: '22P05' });
    expect(rows[0]!.raw).to.include('"jti":"x\\u0000y"');
    expect(JSON.parse(rows[0]!.raw)).to.deep.equal(poisoned);
    expect(rows[0]!.rejected_at).to.be.instanceOf(Date);

    const logged = capture.lines.filter((l) => l.code === 'audit_event_set_aside');
    expect(logged).to.have.length(1);
    expect(logged[0]).to.include({ level: 'error', event_id: poisoned.event_id, job_id: job.id, sqlstate: '22P05' });
    expect(JSON.stringify(logged[0])).not.to.include('x\\u0000y'); // no event values in the log
    expect(stats.events_set_aside).to.equal(1);
  });
});
