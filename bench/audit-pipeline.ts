/** The audit pipeline alone (queue → worker → PostgreSQL), and the check that nothing was lost. */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { AUDIT_JOB, AUDIT_JOB_OPTIONS, AUDIT_QUEUE } from '../common/audit-queue.js';
import { meterCpu, type Meter } from './proc-stats.js';

/** The gateway id of the synthetic events, so they are counted apart from the gateway's. */
export const SYNTHETIC_GATEWAY = 'bench-pipeline';

const BATCH = 200;

/** Waits until the store holds `expected` events (or 60 s pass); returns the count. */
export async function storedCountAfterDrain(count: () => Promise<number>, expected: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const n = await count();
    if (n >= expected) return n;
    if (Date.now() > deadline) throw new Error(`audit store holds ${n} events, expected ${expected}: events were lost`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface PipelineRate {
  perSecond: number;
  /** CPU µs per event stored, by meter. */
  cpuUsPerEvent: Record<string, number>;
}

/**
 * Events per second from queue to PostgreSQL, for 20 s worth of `gatewayPeak` in batches of 200,
 * timed from the first add until the last is stored (the worker stores while the rest are enqueued).
 */
export async function auditPipelineRate(redisUrl: string, queuePrefix: string, count: () => Promise<number>, gatewayPeak: number, meters: Meter[]): Promise<PipelineRate> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(AUDIT_QUEUE, { connection, prefix: queuePrefix });
  try {
    const batches = Math.max(50, Math.ceil((gatewayPeak * 20) / BATCH));
    const events = batches * BATCH;
    const before = await count();
    const now = new Date().toISOString();
    const jobs = Array.from({ length: batches }, () => ({
      name: AUDIT_JOB,
      data: { v: 1, events: Array.from({ length: BATCH }, (_, i) => syntheticEvent(now, i % 100)) },
      opts: AUDIT_JOB_OPTIONS,
    }));
    const cpuPerEvent = meterCpu(meters);
    const started = Date.now();
    for (let i = 0; i < jobs.length; i += 100) await queue.addBulk(jobs.slice(i, i + 100));
    await storedCountAfterDrain(count, before + events);
    const seconds = (Date.now() - started) / 1000;
    return { perSecond: events / Math.max(seconds, 0.001), cpuUsPerEvent: cpuPerEvent(events) };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** An allowed request of one of 100 users, each with its token and address (what the rules see in ordinary traffic). */
function syntheticEvent(ts: string, user: number) {
  return {
    event_id: randomUUID(), ts, request_id: randomUUID(), gateway_id: SYNTHETIC_GATEWAY, route: 'api', method: 'GET', path: '/users/1', status: 200,
    decision: 'allow', reason: null, detail: null, sub: `bench-user-${user}`, consumer: `bench:bench-user-${user}`, jti: `bench-token-${user}`, client_ip: `10.0.0.${user}`,
    user_agent: 'bench', latency_ms: 1.5, upstream_status: 200, bytes_out: 300, rate_limit: null, fail_open: false, shadow: false,
  };
}
