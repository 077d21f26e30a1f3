/**
 * Audit jobs that ended in `failed` hold events that are not stored: the worker watches their
 * count, logs each new one at error level with its event count, and reports the count on
 * /healthz. `npm run admin -- audit retry-failed` puts them back in the queue.
 */
import type { Queue } from 'bullmq';
import type { Logger } from '../common/logger.js';

/** How often the failed count is read (one ZCARD). */
const WATCH_MS = 10_000;
/** At most this many new failed jobs are described per log line. */
const DESCRIBE_MAX = 20;

export class FailedJobsWatch {
  private known: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly queue: Queue, private readonly logger: Logger) {}

  /** The failed count at the last read; undefined until Redis answered once. */
  get count(): number | undefined {
    return this.known;
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), WATCH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Reads the count; logs the jobs that failed since the last read. Never throws. */
  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const count = await this.queue.getFailedCount();
      const added = this.known === undefined ? count : count - this.known;
      this.known = count;
      if (added <= 0) return;
      const newest = await this.queue.getFailed(0, Math.min(added, DESCRIBE_MAX) - 1);
      this.logger.error('audit jobs failed: their events are not stored', {
        code: 'audit_jobs_failed',
        failed_total: count,
        new: added,
        jobs: newest.map((job) => ({
          job_id: job.id,
          events: Array.isArray((job.data as { events?: unknown })?.events) ? (job.data as { events: unknown[] }).events.length : 0,
          attempts: job.attemptsMade,
          reason: job.failedReason?.slice(0, 200),
        })),
        retry: 'npm run admin -- audit retry-failed',
      });
    } catch (err) {
      this.logger.warn('cannot read the failed audit jobs', { code: 'audit_failed_unreadable', error: (err as Error).message });
    } finally {
      this.busy = false;
    }
  }
}
