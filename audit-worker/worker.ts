/**
 * The queue consumer, by job name: `events` is a batch of audit events from a gateway,
 * `security` a batch of security events (bans, unbans, revocations) from the admin CLI. A
 * malformed job, or one of an unknown name, fails at once (UnrecoverableError); a malformed event
 * is rejected alone; an audit event the database refuses is set aside alone
 * (audit_events_rejected); any other store error is thrown so BullMQ retries the whole batch with
 * backoff (the inserts are idempotent).
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../common/redis.js';
import type { z } from 'zod';
import { auditEventSchema, type AuditEvent } from '../common/audit-event.js';
import { AUDIT_JOB, AUDIT_QUEUE, auditBatchSchema, SECURITY_JOB, securityBatchSchema } from '../common/audit-queue.js';
import type { Logger } from '../common/logger.js';
import { securityEventSchema } from '../common/security-event.js';
import type { SecurityEventStore } from './store/security-event-store.js';
import type { EventStore } from './store/event-store.js';
import { insertIsolating } from './store/isolating-insert.js';
import type { WorkerStats } from './worker-stats.js';
import type { AnomalyRules } from './anomaly/anomaly-rules.js';

export interface WorkerDeps {
  /** Must be a BullMQ-ready connection (maxRetriesPerRequest: null), e.g. connectPatient(). */
  connection: RedisClient;
  /** BullMQ prefix, normally `new RedisKeys(REDIS_PREFIX).queuePrefix`. */
  prefix: string;
  store: Pick<EventStore, 'insert' | 'setAside' | 'refusal'>;
  /** Where `security` jobs go; unset, such jobs fail for retry (a worker wired without it). */
  security?: Pick<SecurityEventStore, 'insert'>;
  logger: Logger;
  concurrency: number;
  /** Counted into as events are set aside or dropped; shown by the query API's health. */
  stats: WorkerStats;
  /** Run on each batch once it is stored (an error retries the job; events are counted once). */
  anomaly?: Pick<AnomalyRules, 'afterStore'>;
  /** Told of each audit batch's events once stored (the metrics' lag). */
  storedLag?: (events: readonly AuditEvent[]) => void;
}

/** The job's return value, kept by BullMQ. */
export interface AuditJobResult {
  /** Events new to the store. */
  stored: number;
  /** Valid events the store already had (a redelivered batch). */
  duplicates: number;
  /** Events that failed validation and were dropped. */
  rejected: number;
  /** Valid events the database refused, kept in audit_events_rejected instead. */
  set_aside: number;
}

const uuid = auditEventSchema.shape.event_id;

/** Where an issue is, never what the value was (events may hold user data). */
function issueSummary(issues: readonly { path: readonly PropertyKey[]; code: string }[]): string[] {
  return issues.map((i) => `${i.path.map(String).join('.') || '(root)'}:${i.code}`);
}

function eventCount(data: unknown): number {
  const events = (data as { events?: unknown } | null | undefined)?.events;
  return Array.isArray(events) ? events.length : 0;
}

/** The code that starts the message of every job failed without retry, for the 'failed' log line. */
const DROPPED_CODE = /^([a-z_]+):/;

type Deps = Pick<WorkerDeps, 'store' | 'security' | 'logger' | 'stats' | 'anomaly' | 'storedLag'>;

/** The job processor: dispatches by job name. */
export function processJob(deps: Deps) {
  const events = processAuditJob(deps.store, deps.logger, deps.stats, deps.anomaly, deps.storedLag);
  const security = processSecurityJob(deps.security, deps.logger, deps.stats);
  return async (job: Job<unknown, AuditJobResult>): Promise<AuditJobResult> => {
    if (job.name === AUDIT_JOB) return events(job);
    if (job.name === SECURITY_JOB) return security(job);
    // Printable name only, cut: a job name is whatever a Redis client wrote.
    const name = JSON.stringify(job.name.slice(0, 64).replace(/[^\x20-\x7e]/g, '?'));
    throw new UnrecoverableError(`audit_job_unknown: no job named ${name} on this queue (expected ${AUDIT_JOB} or ${SECURITY_JOB})`);
  };
}

/**
 * The events of a job that pass `schema`; each one that does not is logged (where, never its
 * value) as `<kind>_event_malformed` and dropped alone.
 */
function validEvents<S extends z.ZodType>(raws: readonly unknown[], schema: S, job: Job, logger: Logger, kind: 'audit' | 'security'): z.output<S>[] {
  const valid: z.output<S>[] = [];
  raws.forEach((raw, index) => {
    const event = schema.safeParse(raw);
    if (event.success) {
      valid.push(event.data);
      return;
    }
    const id = uuid.safeParse((raw as { event_id?: unknown } | null)?.event_id);
    logger.error(`${kind} event malformed`, {
      code: `${kind}_event_malformed`,
      job_id: job.id,
      index,
      event_id: id.success ? id.data : undefined,
      issues: issueSummary(event.error.issues),
    });
  });
  return valid;
}

/**
 * A `security` job: the admin CLI's bans, unbans and revocations. Validated like audit batches
 * (a malformed event is logged and dropped alone); stored idempotently by event_id.
 */
export function processSecurityJob(store: WorkerDeps['security'], logger: Logger, stats: WorkerStats) {
  return async (job: Job<unknown, AuditJobResult>): Promise<AuditJobResult> => {
    const batch = securityBatchSchema.safeParse(job.data);
    if (!batch.success) {
      throw new UnrecoverableError(`security_job_malformed: ${issueSummary(batch.error.issues).join(', ')}`);
    }
    const valid = validEvents(batch.data.events, securityEventSchema, job, logger, 'security');
    const rejected = batch.data.events.length - valid.length;
    stats.events_malformed += rejected;
    if (!store) throw new Error('security_store_missing: this worker was built without a security event store');
    const stored = await store.insert(valid);
    const result = { stored, duplicates: valid.length - stored, rejected, set_aside: 0 };
    // One line per event at info: bans and revocations are rare and worth seeing in the log.
    for (const e of valid) logger.info('security event', { code: 'security_event', job_id: job.id, event_id: e.event_id, kind: e.kind, actor: e.actor, subject_kind: e.subject_kind, subject: e.subject });
    return result;
  };
}

/** `storedLag`: told of each batch's events once stored (the metrics' lag from event time to stored). */
export function processAuditJob(store: WorkerDeps['store'], logger: Logger, stats: WorkerStats, anomaly?: WorkerDeps['anomaly'], storedLag?: (events: readonly AuditEvent[]) => void) {
  return async (job: Job<unknown, AuditJobResult>): Promise<AuditJobResult> => {
    const batch = auditBatchSchema.safeParse(job.data);
    if (!batch.success) {
      throw new UnrecoverableError(`audit_job_malformed: ${issueSummary(batch.error.issues).join(', ')}`);
    }
    const valid = validEvents(batch.data.events, auditEventSchema, job, logger, 'audit');
    const rejected = batch.data.events.length - valid.length;
    stats.events_malformed += rejected;
    const { stored, setAside } = await insertIsolating(store, valid, ({ event, sqlstate }) => {
      stats.events_set_aside += 1;
      // The SQLSTATE only: the database's message may quote the refused value.
      logger.error('audit event set aside', { code: 'audit_event_set_aside', job_id: job.id, event_id: event.event_id, sqlstate });
    });
    stats.events_stored += stored;
    stats.events_duplicate += valid.length - stored - setAside;
    storedLag?.(valid);
    await anomaly?.afterStore(valid, stored + setAside === valid.length);
    const result = { stored, duplicates: valid.length - stored - setAside, rejected, set_aside: setAside };
    logger.debug('audit batch stored', { job_id: job.id, ...result });
    return result;
  };
}

/**
 * Job locks. A Redis kill can leave a job in `active` with no worker on it (the script that
 * took it ran, its reply was lost); BullMQ gives it back when its lock has expired and the
 * stalled-job check runs. With BullMQ's defaults (30 s lock, a check every 30 s, one stall
 * allowed) such a job waited 35-60 s and, orphaned twice, went to `failed` unstored. A batch
 * may safely run again (the insert skips event ids it has), so: a short lock (renewed every
 * 1.5 s while the job runs), a check every 3 s, and many stalls allowed. Recovered within ~6 s
 * of Redis being back; the cost is one small script per 1.5 s per worker.
 */
export const JOB_LOCKING = { lockDuration: 3_000, stalledInterval: 3_000, maxStalledCount: 50 } as const;

export function buildWorker({ connection, prefix, store, security, logger, concurrency, stats, anomaly, storedLag }: WorkerDeps): Worker<unknown, AuditJobResult> {
  const worker = new Worker<unknown, AuditJobResult>(AUDIT_QUEUE, processJob({ store, security, logger, stats, anomaly, storedLag }), { connection, prefix, concurrency, ...JOB_LOCKING });
  worker.on('failed', (job, err) => {
    const meta = { job_id: job?.id, job_name: job?.name.slice(0, 64), attempts: job?.attemptsMade, events: eventCount(job?.data), error: err.message };
    if (err.name === 'UnrecoverableError') logger.error('audit job dropped', { code: DROPPED_CODE.exec(err.message)?.[1] ?? 'audit_job_malformed', ...meta });
    // finishedOn is set only when BullMQ moved the job to `failed` rather than retrying it.
    else if (job?.finishedOn) logger.error('audit job failed for good: its events are not stored', { code: 'audit_job_failed', ...meta });
    else logger.warn('audit job failed, will retry', { code: 'audit_store_failed', ...meta });
  });
  worker.on('error', (err) => logger.error('audit worker error', { code: 'audit_worker_error', err }));
  return worker;
}
