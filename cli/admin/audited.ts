/**
 * The admin CLI's changes of security state, each followed by its security event on the audit
 * queue. Order: the change first, then the event (an event for a change that failed would be a
 * false record). Both go to the same Redis, so a publish that fails right after a write that
 * worked is rare; when it happens the change stays and the CLI says loudly that it was not
 * audited and exits 1 (NotAuditedError), so a script or a person can retry or record it.
 */
import type { RedisClient } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { securityEvent, type SecurityEventInput, type SecurityEvent } from '../../common/security-event.js';
import { publishSecurityEvents } from '../../common/security-publisher.js';
import { usageFromZod } from './usage.js';

export class NotAuditedError extends Error {
  constructor(done: string, event: SecurityEvent, cause: unknown) {
    super(
      `${done}, but it was NOT AUDITED: publishing security event ${event.event_id} failed ` +
        `(${cause instanceof Error ? cause.message : String(cause)}); the change stays in effect`,
    );
    this.name = 'NotAuditedError';
  }
}

/** Builds the event first (bad input throws a UsageError before any write), then writes, then publishes. */
export function prepare(input: SecurityEventInput): SecurityEvent {
  try {
    return securityEvent(input);
  } catch (err) {
    return usageFromZod(err);
  }
}

export async function publishOrFail(redis: RedisClient, keys: RedisKeys, event: SecurityEvent, done: string): Promise<void> {
  try {
    await publishSecurityEvents(redis, keys.queuePrefix, [event]);
  } catch (err) {
    throw new NotAuditedError(done, event, err);
  }
}
