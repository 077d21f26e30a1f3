import type { Queue } from 'bullmq';
import type { AuditEvent } from '../../common/audit-event.js';
import { AUDIT_JOB, AUDIT_JOB_OPTIONS, type AuditBatch } from '../../common/audit-queue.js';
import type { Logger } from '../../common/logger.js';
import type { DiskSpool, SpoolStats } from './disk-spool.js';

export interface PublisherOptions {
  batchSize: number;
  flushMs: number;
  /** How long a queue write may take before the batch goes to the spool instead. */
  addTimeoutMs: number;
  replayEveryMs: number;
  /** A spooled batch older than this while the queue answers is stranded: logged as an error. */
  strandedAfterMs: number;
  /** False while the queue's Redis is disconnected: batches then go straight to the spool. */
  queueReady: () => boolean;
}

/**
 * Publishes audit events without ever blocking a request: events are buffered and sent as one
 * BullMQ job per batch; a batch the queue does not take goes to the disk spool and is replayed
 * when Redis answers again. The worker ignores event ids it has, so a replay never doubles.
 */
export class AuditPublisher {
  private buffer: AuditEvent[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly replayTimer: NodeJS.Timeout;
  private replaying: Promise<void> | undefined;
  private strandedLoggedAt = 0;
  /** Events refused by a full spool; each one is also logged as an error. */
  dropped = 0;
  /** Batches the queue took (replayed ones included), and batches written to the spool: the metrics read them. */
  readonly batches = { published: 0, spooled: 0 };

  constructor(
    private readonly queue: Queue,
    private readonly spool: DiskSpool,
    private readonly options: PublisherOptions,
    private readonly logger: Logger,
  ) {
    this.replayTimer = setInterval(() => void this.replay(), options.replayEveryMs);
    this.replayTimer.unref();
  }

  publish(event: AuditEvent): void {
    this.buffer.push(event);
    if (this.buffer.length >= this.options.batchSize) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** What waits in the spool now (health endpoint). */
  spoolStats(): SpoolStats {
    return this.spool.stats();
  }

  /** Sends what is buffered now; resolves when every batch sent so far is queued or spooled. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all(this.pending);
    await this.replaying;
  }

  async close(): Promise<void> {
    clearInterval(this.replayTimer);
    await this.drain();
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.buffer.length === 0) return;
    const events = this.buffer;
    this.buffer = [];
    const sending = this.send(events, Date.now()).finally(() => this.pending.delete(sending));
    this.pending.add(sending);
  }

  /** `flushedAt` (ms since epoch) orders the batch in the spool should it go there. */
  private async send(events: AuditEvent[], flushedAt: number): Promise<void> {
    try {
      await this.enqueue(events);
    } catch (err) {
      this.logger.warn('audit queue unavailable, spooling batch', { events: events.length, error: (err as Error).message });
      await this.toSpool(events, flushedAt);
    }
  }

  private async enqueue(events: AuditEvent[]): Promise<void> {
    if (!this.options.queueReady()) throw new Error('audit queue redis is not connected');
    const batch: AuditBatch = { v: 1, events };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`queue add took over ${this.options.addTimeoutMs} ms`)), this.options.addTimeoutMs);
    });
    try {
      await Promise.race([this.queue.add(AUDIT_JOB, batch, AUDIT_JOB_OPTIONS), timeout]);
      this.batches.published++;
    } finally {
      clearTimeout(timer);
    }
  }

  private async toSpool(events: AuditEvent[], flushedAt: number): Promise<void> {
    const written = await this.spool.write(events, flushedAt).catch((err: Error) => {
      this.logger.error('audit spool write failed', { error: err.message });
      return false;
    });
    if (written) this.batches.spooled++;
    else {
      this.dropped += events.length;
      this.logger.error('audit events dropped: spool full or unwritable', {
        code: 'audit_spool_full',
        events: events.length,
        event_ids: events.map((e) => e.event_id),
      });
    }
  }

  /**
   * Runs one replay pass unless one is running. The guard is cleared in a `.finally` callback,
   * which always runs after the assignment: an async body that finishes without awaiting (an
   * empty spool) must not leave a settled promise behind as "still replaying" (issue 24).
   */
  private replay(): Promise<void> {
    if (!this.replaying) {
      this.replaying = this.replaySpool().finally(() => {
        this.replaying = undefined;
      });
    }
    return this.replaying;
  }

  /**
   * Replays spooled batches oldest first; stops at the first one the queue refuses. Batches being
   * sent when the pass starts go first: one caught in a queue write by a Redis outage is re-sent
   * on reconnect (or spooled under its flush time after addTimeoutMs), and was published before
   * everything spooled meanwhile, so the queue gets a gateway's spooled batches in publish order.
   */
  private async replaySpool(): Promise<void> {
    await Promise.all(this.pending);
    try {
      for (const name of this.spool.list()) {
        const events = await this.spool.read(name).catch(async (err: Error) => {
          this.logger.error('unreadable audit spool file set aside', { code: 'audit_spool_corrupt', file: name, error: err.message });
          await this.spool.setAside(name);
        });
        if (!events) continue;
        await this.enqueue(events);
        await this.spool.remove(name);
        this.logger.info('replayed spooled audit batch', { file: name, events: events.length });
      }
    } catch {
      // Still unavailable: the next tick tries again.
    }
    this.reportStranded();
  }

  /** At most once per `strandedAfterMs`: an error while batches that old wait although the queue answers. */
  private reportStranded(): void {
    const now = Date.now();
    if (!this.options.queueReady() || now - this.strandedLoggedAt < this.options.strandedAfterMs) return;
    const stats = this.spool.stats();
    if (stats.batches === 0 || stats.oldest_age_s * 1000 < this.options.strandedAfterMs) return;
    this.strandedLoggedAt = now;
    this.logger.error('audit batches stranded in the spool while the queue answers', { code: 'audit_spool_stranded', ...stats });
  }
}
