/**
 * The worker's metrics (README: Metrics): events stored and skipped as duplicates, the lag from
 * an event's time to its storing, alerts opened by rule (rule names come from the config), and
 * the audit queue's depth by state, read at each scrape.
 */
import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AuditEvent } from '../common/audit-event.js';
import { counterReading, processRegistry } from '../common/metrics.js';
import type { WorkerStats } from './worker-stats.js';

/** Lag buckets, in seconds: 10 ms (the usual) to 1 h (a spool replayed after an outage). */
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const QUEUE_STATES = ['wait', 'active', 'delayed', 'failed'] as const;
/** A scrape does not wait longer than this for the queue's counts (Redis away: the last ones stay). */
const QUEUE_COUNT_TIMEOUT_MS = 500;

export class WorkerMetrics {
  readonly registry = processRegistry();
  private readonly lag = new Histogram({ name: 'worker_event_lag_seconds', help: "From an audit event's time to its storing", buckets: LAG_BUCKETS, registers: [this.registry] });

  constructor(stats: WorkerStats, raised: () => ReadonlyMap<string, number>, queue: Pick<Queue, 'getJobCounts'>) {
    counterReading(this.registry, 'worker_events_stored_total', 'Audit events stored', () => stats.events_stored);
    counterReading(this.registry, 'worker_events_duplicate_total', 'Audit events skipped: their event_id was stored already', () => stats.events_duplicate);
    counterReading(this.registry, 'worker_events_set_aside_total', 'Valid audit events the database refused (kept in audit_events_rejected)', () => stats.events_set_aside);
    counterReading(this.registry, 'worker_events_malformed_total', 'Events dropped because they failed validation', () => stats.events_malformed);
    new Counter({
      name: 'worker_alerts_raised_total',
      help: 'Anomaly alerts opened, by rule',
      labelNames: ['rule'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [rule, n] of raised()) this.labels(rule).inc(n);
      },
    });
    new Gauge({
      name: 'worker_queue_jobs',
      help: 'Jobs in the audit queue, by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await Promise.race([queue.getJobCounts(...QUEUE_STATES), new Promise<undefined>((resolve) => void setTimeout(resolve, QUEUE_COUNT_TIMEOUT_MS))]);
        if (counts) for (const state of QUEUE_STATES) this.labels(state).set(counts[state] ?? 0);
      },
    });
  }

  stored(events: readonly AuditEvent[]): void {
    const now = Date.now();
    for (const event of events) this.lag.observe(Math.max(0, now - Date.parse(event.ts)) / 1000);
  }
}
