/**
 * Keeping the audit store's partitions: at start and every hour, the partitions of today and the
 * next days are made (so no insert waits for one), and those older than audit.retention_days
 * dropped whole (never a DELETE over rows: a dropped table frees its space at once and costs no
 * vacuum). What was dropped is logged. Every worker runs it; the advisory lock makes one at a
 * time do the work, the others find nothing left to do.
 */
import type { Logger } from '../../common/logger.js';
import type { EventStore } from './event-store.js';
import { retentionStart } from './kept-window.js';

export const RETENTION_EVERY_MS = 3_600_000;

export interface RetentionRun {
  /** Days whose partition was made ahead. */
  created: string[];
  /** Days whose partition was dropped. */
  dropped: string[];
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly store: Pick<EventStore, 'ensureDaysAhead' | 'partitions'>,
    private readonly retentionDays: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** One pass: days ahead made, days past retention dropped. Throws what the database threw. */
  async run(): Promise<RetentionRun> {
    const created = await this.store.ensureDaysAhead();
    const cutoff = retentionStart(this.now(), this.retentionDays);
    const dropped = await this.store.partitions.dropEndedBy(cutoff);
    if (dropped.length > 0) {
      this.logger.info('audit partitions dropped: older than the retention limit', {
        code: 'audit_partitions_dropped',
        days: dropped,
        retention_days: this.retentionDays,
        kept_from: new Date(cutoff).toISOString(),
      });
    }
    return { created, dropped };
  }

  /** One pass whose failure is logged, not thrown: the store works on, and the next run tries again. Skipped while one runs. */
  async runLogged(): Promise<void> {
    if (this.running) return;
    this.running = this.run()
      .catch((err: Error) => this.logger.warn('audit retention run failed, tried again at the next', { code: 'audit_retention_failed', error: err.message }))
      .finally(() => (this.running = undefined));
    await this.running;
  }

  /** Runs every RETENTION_EVERY_MS from now on (the first run is the caller's, at start). */
  start(everyMs = RETENTION_EVERY_MS): void {
    this.timer = setInterval(() => void this.runLogged(), everyMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
