/**
 * An audit job that fails for good holds events that are not stored: the built worker logs it
 * at error level with its event count, reports it on /healthz, and `admin audit retry-failed`
 * puts it back so its events are stored.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { AUDIT_JOB, AUDIT_QUEUE } from '../../common/audit-queue.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { auditEvents } from '../helpers/audit-events.js';
import { eventually, freePort } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { ProductProcess, runCli } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis-server.js';

describe('failed audit jobs, on the built worker', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let connection: Redis;
  let queue: Queue;
  let db: pg.Client;
  let worker: ProductProcess;
  let healthUrl: string;
  const schema = uniqueSchema('failed');
  const env = { NODE_ENV: 'test', REDIS_PREFIX: `fj${randomUUID().slice(0, 6)}`, LOG_LEVEL: 'info' };

  before(async () => {
    redis = await TestRedis.start();
    connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    queue = new Queue(AUDIT_QUEUE, { connection, prefix: new RedisKeys(env.REDIS_PREFIX).queuePrefix });
    db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const port = await freePort();
    worker = await ProductProcess.start('audit-worker', 'audit-worker/main.js', { ...env, REDIS_URL: redis.url, AUDIT_PORT: String(port), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: schema }, port);
    healthUrl = `http://127.0.0.1:${port}/healthz`;
  });

  after(async () => {
    await worker?.kill();
    await queue?.close();
    connection?.disconnect();
    await redis?.stop();
    await db?.end();
    await dropSchema(schema);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(worker.output.join('').slice(-4000));
  });

  it('reports a job that failed for good and stores its events once it is retried', async () => {
    const events = auditEvents(3);
    // The store cannot write (its table is gone for a while) and the job has one attempt.
    await db.query(`ALTER TABLE "${schema}".audit_events RENAME TO audit_events_away`);
    const job = await queue.add(AUDIT_JOB, { v: 1, events }, { attempts: 1 });
    await eventually(async () => ((await queue.getFailedCount()) === 1 ? true : undefined), 10_000, 'the job in failed');

    const logged = await eventually(() => worker.output.join('').split('\n').find((line) => line.includes('"audit_job_failed"')), 5_000, 'the error log line');
    expect(JSON.parse(logged)).to.include({ level: 'error', job_id: job.id, events: 3 });
    const health = await eventually(async () => {
      const body = (await (await fetch(healthUrl)).json()) as { failed_jobs: number | null };
      return body.failed_jobs === 1 ? body : undefined;
    }, 15_000, 'failed_jobs: 1 on /healthz');
    expect(health).to.include({ status: 'ok', failed_jobs: 1 });

    await db.query(`ALTER TABLE "${schema}".audit_events_away RENAME TO audit_events`);
    const cli = await runCli('cli/admin.js', ['audit', 'retry-failed'], { ...env, REDIS_URL: redis.url });
    expect(cli.code, cli.stderr).to.equal(0);
    expect(cli.stdout.trim()).to.equal('re-queued 1 failed audit job');
    const stored = await eventually(async () => {
      const { rows } = await db.query<{ event_id: string }>(`SELECT event_id FROM "${schema}".audit_events`);
      return rows.length === 3 ? rows : undefined;
    }, 10_000, 'the 3 events stored');
    expect(stored.map((r) => r.event_id).sort()).to.deep.equal(events.map((e) => e.event_id).sort());
    expect(await queue.getFailedCount()).to.equal(0);
  });

  it('refuses an unknown audit command with exit code 2', async () => {
    const cli = await runCli('cli/admin.js', ['audit', 'drop-everything'], { ...env, REDIS_URL: redis.url });
    expect(cli.code).to.equal(2);
    expect(cli.stderr).to.include('unknown audit command drop-everything');
  });
});
