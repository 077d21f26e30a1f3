/** `admin audit retry-failed`: puts every audit job in `failed` back in the queue. */
import { Queue } from 'bullmq';
import { AUDIT_QUEUE } from '../common/audit-queue.js';
import { connectFailFast } from '../common/redis.js';
import { RedisKeys } from '../common/redis-keys.js';
import type { RedisTarget } from '../common/redis-target.js';

/** Returns how many failed jobs were re-queued (a malformed job fails again at once, and is logged again). */
export async function retryFailedAuditJobs(redis: RedisTarget, redisPrefix: string): Promise<number> {
  const connection = connectFailFast(redis, { maxRetriesPerRequest: 2 });
  const queue = new Queue(AUDIT_QUEUE, { connection, prefix: RedisKeys.of(redisPrefix, connection).queuePrefix });
  try {
    const failed = await queue.getFailedCount();
    // Only jobs that failed before now: one failing again meanwhile is not retried in a loop.
    await queue.retryJobs({ state: 'failed', timestamp: Date.now() });
    return failed;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
