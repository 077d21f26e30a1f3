/**
 * What the gateway's metrics cost per request, in process: started() and finished() of one
 * request (a counter, three histograms, the in-flight gauge), over a few routes and outcomes as
 * real traffic mixes them.
 */
import type { AuditEvent } from '../common/audit-event.js';
import type { RequestRecord } from '../gateway/audit/audit-record.js';
import { GatewayMetrics } from '../gateway/metrics.js';

const REQUESTS = 1_000_000;

export function metricsCost(): number {
  const metrics = new GatewayMetrics();
  const routes = ['users', 'orders', 'search', null];
  const outcomes = [
    { decision: 'allow', reason: null, status: 200 },
    { decision: 'deny', reason: 'rate_limited', status: 429 },
    { decision: 'deny', reason: 'token_invalid', status: 401 },
  ] as const;
  const events = routes.flatMap((route) => outcomes.map((o) => ({ route, ...o, latency_ms: 2.5, fail_open: false }) as unknown as AuditEvent));
  const record = { checkMs: 0.4, upstreamMs: 1.2 } as RequestRecord;
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      metrics.started();
      metrics.finished(record, events[i % events.length]!);
    }
  };
  run(100_000); // warm up
  const started = process.hrtime.bigint();
  run(REQUESTS);
  return Number(process.hrtime.bigint() - started) / REQUESTS;
}
