/**
 * The queue contract between the gateway (publisher) and the audit worker (consumer):
 * one job carries a batch of events, so the hot path pays one Redis write per batch.
 */
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { AuditEvent } from './audit-event.js';
import type { SecurityEvent } from './security-event.js';

export const AUDIT_QUEUE = 'audit';
/** A batch of audit events (one per request) from a gateway. */
export const AUDIT_JOB = 'events';
/** Security events (bans, unbans, revocations) from the admin CLI; same queue, same options. */
export const SECURITY_JOB = 'security';

/** Outer shape only: each event is validated on its own, so one bad event cannot sink its batch. */
export const auditBatchSchema = z.strictObject({
  v: z.literal(1),
  events: z.array(z.unknown()).min(1).max(10_000),
});

export interface AuditBatch {
  v: 1;
  events: AuditEvent[];
}

/** Outer shape of a SECURITY_JOB; each event is validated on its own, as for AUDIT_JOB. */
export const securityBatchSchema = z.strictObject({
  v: z.literal(1),
  events: z.array(z.unknown()).min(1).max(1000),
});

export interface SecurityBatch {
  v: 1;
  events: SecurityEvent[];
}

/** A database outage is retried with exponential backoff for about 36 hours; a malformed job is not retried. */
export const AUDIT_JOB_OPTIONS: JobsOptions = {
  attempts: 17,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 100_000 },
};
