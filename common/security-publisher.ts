/**
 * Publishes security events on the audit queue (job SECURITY_JOB), for processes that are not
 * the audit worker (the admin CLI); the worker stores them in audit_security_events.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from './redis.js';
import { AUDIT_JOB_OPTIONS, AUDIT_QUEUE, SECURITY_JOB, type SecurityBatch } from './audit-queue.js';
import type { SecurityEvent } from './security-event.js';

/** Resolves once the job is in Redis; rejects when it could not be written. */
export async function publishSecurityEvents(connection: RedisClient, queuePrefix: string, events: SecurityEvent[]): Promise<void> {
  const queue = new Queue(AUDIT_QUEUE, { connection, prefix: queuePrefix });
  // A Queue reports connection trouble as 'error' events too; the add() below rejects on it.
  queue.on('error', () => {});
  try {
    const batch: SecurityBatch = { v: 1, events };
    // The first event id as job id: a retried publish of the same events is one job.
    await queue.add(SECURITY_JOB, batch, { ...AUDIT_JOB_OPTIONS, jobId: `security-${events[0]?.event_id ?? 'none'}` });
  } finally {
    await queue.close();
  }
}
