import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../common/audit-event.js';
import { AUDIT_JOB, AUDIT_QUEUE, type AuditBatch } from '../../common/audit-queue.js';
import { silentLogger } from '../../common/logger.js';
import { connectFailFast, isReady } from '../../common/redis.js';
import { DiskSpool } from '../../gateway/audit/disk-spool.js';
import { AuditPublisher, type PublisherOptions } from '../../gateway/audit/publisher.js';
import { auditEvents } from '../helpers/audit-events.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

const SPOOL_FILE = /^\d{15}-[0-9a-f]{8}-\d{9}\.json$/;
/** A spool that counts how often it was listed: once per replay pass. */
class CountingSpool extends DiskSpool {
  listed = 0;
  override list(): string[] {
    this.listed++;
    return super.list();
  }
}

const ids = (events: readonly AuditEvent[]): string[] => events.map((e) => e.event_id);

describe('audit publisher', function () {
  this.timeout(30_000);
  let server: TestRedis;
  let serverDown = false;
  let connection: Redis;
  let queue: Queue;
  let dir: string;
  let publishers: AuditPublisher[];

  before(async () => {
    server = await TestRedis.start();
  });
  after(async () => {
    await server?.stop();
  });

  beforeEach(async () => {
    connection = connectFailFast(server.url);
    connection.on('error', () => undefined);
    queue = new Queue(AUDIT_QUEUE, { connection, prefix: `test-${randomUUID()}` });
    queue.on('error', () => undefined);
    await queue.waitUntilReady();
    dir = await mkdtemp(join(tmpdir(), 'audit-spool-'));
    publishers = [];
  });
  afterEach(async () => {
    if (serverDown) {
      await server.resume();
      serverDown = false;
    }
    await Promise.all(publishers.map((p) => p.close()));
    await queue.close();
    connection.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  function publisherFor(spool: DiskSpool, options: Partial<PublisherOptions> = {}, logger = silentLogger()): AuditPublisher {
    const publisher = new AuditPublisher(
      queue,
      spool,
      { batchSize: 10, flushMs: 60_000, addTimeoutMs: 300, replayEveryMs: 60_000, strandedAfterMs: 60_000, queueReady: () => isReady(connection), ...options },
      logger,
    );
    publishers.push(publisher);
    return publisher;
  }

  /** The batches waiting in the queue, in the order they were added. */
  async function queuedBatches(): Promise<AuditEvent[][]> {
    const jobs = (await queue.getJobs(['waiting'], 0, -1, true)) as Job<AuditBatch>[];
    return jobs.sort((a, b) => Number(a.id) - Number(b.id)).map((job) => job.data.events);
  }

  async function stopRedis(): Promise<void> {
    serverDown = true;
    await server.stop();
    // Wait until the client has seen the connection go, as a request arriving now would.
    await eventually(() => (connection.status === 'ready' ? undefined : true), 5_000, 'the client to notice Redis is gone');
  }

  it('publishes 25 events as jobs of 10, 10 and 5 holding exactly those events', async () => {
    const publisher = publisherFor(new DiskSpool(dir, 1024 * 1024));
    const events = auditEvents(25);
    for (const event of events) publisher.publish(event);
    await publisher.drain();

    const batches = await queuedBatches();
    expect(batches.map((b) => b.length)).to.deep.equal([10, 10, 5]);
    expect(batches.flat()).to.deep.equal(events);
    const jobs = await queue.getJobs(['waiting'], 0, -1, true);
    expect(jobs.map((j) => [j.name, j.opts.attempts])).to.deep.equal([
      [AUDIT_JOB, 17],
      [AUDIT_JOB, 17],
      [AUDIT_JOB, 17],
    ]);
    expect(publisher.dropped).to.equal(0);
  });

  it('sends a partial batch once flushMs has passed', async () => {
    const publisher = publisherFor(new DiskSpool(dir, 1024 * 1024), { flushMs: 20 });
    const events = auditEvents(3);
    for (const event of events) publisher.publish(event);
    const batches = await eventually(async () => {
      const queued = await queuedBatches();
      return queued.length > 0 ? queued : undefined;
    }, 5_000, 'the partial batch to be queued');
    expect(batches).to.deep.equal([events]);
  });

  it('spools batches while Redis is down and replays each event exactly once when it is back', async () => {
    const spool = new DiskSpool(dir, 1024 * 1024);
    const publisher = publisherFor(spool, { replayEveryMs: 100 });
    await stopRedis();

    const events = auditEvents(25);
    expect(() => events.forEach((e) => publisher.publish(e))).not.to.throw();
    const startedAt = Date.now();
    await publisher.drain();
    expect(Date.now() - startedAt).to.be.below(3_000);

    const files = spool.list();
    expect(files).to.have.length(3);
    expect(files.every((f) => SPOOL_FILE.test(f))).to.equal(true);
    const spooled = (await Promise.all(files.map((f) => spool.read(f)))).flat();
    expect(ids(spooled)).to.have.members(ids(events));
    expect(publisher.dropped).to.equal(0);

    await server.resume();
    serverDown = false;
    await eventually(() => (spool.list().length === 0 ? true : undefined), 15_000, 'the spool to be replayed');
    await publisher.drain();

    const queued = (await queuedBatches()).flat();
    expect(queued).to.have.length(25);
    expect(ids(queued)).to.have.members(ids(events));
    expect(spool.size).to.equal(0);
  });

  it('drops the events of a batch that would overflow the spool and counts them', async () => {
    const events = auditEvents(10);
    const batchBytes = Buffer.byteLength(JSON.stringify(events.slice(0, 5)));
    const spool = new DiskSpool(dir, Math.floor(batchBytes * 1.5));
    const publisher = publisherFor(spool, { batchSize: 5 });
    await stopRedis();

    events.slice(0, 5).forEach((e) => publisher.publish(e));
    await publisher.drain();
    events.slice(5).forEach((e) => publisher.publish(e));
    await publisher.drain();

    expect(publisher.dropped).to.equal(5);
    const files = spool.list();
    expect(files).to.have.length(1);
    expect(await spool.read(files[0] ?? '')).to.deep.equal(events.slice(0, 5));
    expect(spool.size).to.equal(batchBytes);
  });

  it('sets a corrupt spool file aside as .corrupt and replays the rest', async () => {
    const good = auditEvents(4);
    const corrupt = '000000000000001-1-000000000.json';
    const valid = '000000000000002-1-000000000.json';
    await writeFile(join(dir, corrupt), '[{"event_id": "truncated');
    await writeFile(join(dir, valid), JSON.stringify(good));
    const spool = new DiskSpool(dir, 1024 * 1024);
    publisherFor(spool, { replayEveryMs: 50 });

    await eventually(() => (spool.list().length === 0 ? true : undefined), 10_000, 'the spool to be replayed');
    expect((await readdir(dir)).sort()).to.deep.equal([`${corrupt}.corrupt`]);
    expect(existsSync(join(dir, valid))).to.equal(false);
    expect(await queuedBatches()).to.deep.equal([good]);
  });

  it('still replays after many ticks that found the spool empty (a guard left set stranded every later outage)', async () => {
    const spool = new CountingSpool(dir, 1024 * 1024);
    const publisher = publisherFor(spool, { replayEveryMs: 20 });
    await eventually(() => (spool.listed >= 5 ? true : undefined), 5_000, 'five replay passes over an empty spool');

    await stopRedis();
    const events = auditEvents(7);
    events.forEach((e) => publisher.publish(e));
    await publisher.drain();
    expect(spool.list()).to.have.length(1);

    await server.resume();
    serverDown = false;
    await eventually(() => (spool.list().length === 0 ? true : undefined), 10_000, 'the spool to be replayed');
    expect(ids((await queuedBatches()).flat())).to.have.members(ids(events));
  });

  it('logs batches stranded in the spool while the queue reports ready, at most once per bound', async () => {
    const stranded = auditEvents(2);
    await writeFile(join(dir, `${String(Date.now() - 120_000).padStart(15, '0')}-0badc0de-000000000.json`), JSON.stringify(stranded));
    const spool = new CountingSpool(dir, 1024 * 1024);
    const { logger, lines } = captureLogger();
    await stopRedis();
    // The queue claims to be ready but cannot take the batch: the batch stays, and that must be loud.
    publisherFor(spool, { replayEveryMs: 20, strandedAfterMs: 60_000, queueReady: () => true }, logger);
    const line = await eventually(() => lines.find((l) => l.code === 'audit_spool_stranded'), 10_000, 'the stranded-batch error');
    expect(line).to.include({ level: 'error', batches: 1 });
    expect(line.oldest_age_s).to.be.within(119, 180);
    const passes = spool.listed;
    await eventually(() => (spool.listed >= passes + 5 ? true : undefined), 10_000, 'five more replay passes');
    expect(lines.filter((l) => l.code === 'audit_spool_stranded')).to.have.length(1);
  });
});
