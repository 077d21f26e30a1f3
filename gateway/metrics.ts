/**
 * The gateway's metrics (README: Metrics). Every label value is bounded: route names come from
 * the config, reasons from the registry in common/errors.ts, decisions and status classes are a
 * handful; no path, id or address is ever a label. Per request: a gauge up and down, one counter
 * and up to three histograms, their children looked up in a Map by one concatenated key (prom-client's
 * own label lookup hashes an object per call).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AuditEvent } from '../common/audit-event.js';
import { counterReading, gaugeReading, LATENCY_BUCKETS, processRegistry, statusClass } from '../common/metrics.js';
import type { RequestRecord } from './audit/audit-record.js';
import type { SpoolStats } from './audit/disk-spool.js';

/** The route label of a request no route matched. */
const NO_ROUTE = '(none)';

interface Counted {
  inc(): void;
}
interface Observed {
  observe(value: number): void;
}

export interface AuditCounts {
  batches: { published: number; spooled: number };
  dropped: number;
  spoolStats(): SpoolStats;
}

export class GatewayMetrics {
  readonly registry = processRegistry();
  private readonly requests = new Counter({ name: 'gateway_requests_total', help: 'Requests answered, by route, decision, reason (empty when allowed) and status class', labelNames: ['route', 'decision', 'reason', 'status_class'], registers: [this.registry] });
  private readonly failOpen = new Counter({ name: 'gateway_fail_open_total', help: 'Requests let through unchecked because Redis could not decide (the route fails open)', labelNames: ['route'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'gateway_request_duration_seconds', help: 'From the request to the end of the response, by route', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly check = new Histogram({ name: 'gateway_sidecar_check_duration_seconds', help: "The sidecar's decision, as the gateway waited for it", buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly upstream = new Histogram({ name: 'gateway_upstream_duration_seconds', help: "From sending to the upstream to its response's headers, by route", labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly inFlight = new Gauge({ name: 'gateway_requests_in_flight', help: 'Requests being served now', registers: [this.registry] });
  private readonly requestChildren = new Map<string, Counted>();
  private readonly routeChildren = new Map<string, { duration: Observed; upstream: Observed; failOpen: Counted }>();

  constructor(audit?: AuditCounts) {
    if (!audit) return;
    counterReading(this.registry, 'gateway_audit_batches_published_total', 'Audit batches the queue took (replayed ones included)', () => audit.batches.published);
    counterReading(this.registry, 'gateway_audit_batches_spooled_total', 'Audit batches written to the disk spool (queue unavailable)', () => audit.batches.spooled);
    counterReading(this.registry, 'gateway_audit_events_dropped_total', 'Audit events lost to a full or unwritable spool (each also logged)', () => audit.dropped);
    gaugeReading(this.registry, 'gateway_audit_spool_bytes', 'Bytes waiting in the audit spool', () => audit.spoolStats().bytes);
    gaugeReading(this.registry, 'gateway_audit_spool_batches', 'Batches waiting in the audit spool', () => audit.spoolStats().batches);
  }

  started(): void {
    this.inFlight.inc();
  }

  /** A request's response is done (or aborted): `event` is its audit event. */
  finished(record: RequestRecord, event: AuditEvent): void {
    this.inFlight.dec();
    const route = event.route ?? NO_ROUTE;
    const reason = event.reason ?? '';
    const cls = statusClass(event.status);
    const key = `${route}\n${event.decision}\n${reason}\n${cls}`;
    let counter = this.requestChildren.get(key);
    if (!counter) this.requestChildren.set(key, (counter = this.requests.labels(route, event.decision, reason, cls)));
    counter.inc();
    let perRoute = this.routeChildren.get(route);
    if (!perRoute) this.routeChildren.set(route, (perRoute = { duration: this.duration.labels(route), upstream: this.upstream.labels(route), failOpen: this.failOpen.labels(route) }));
    perRoute.duration.observe(event.latency_ms / 1000);
    if (record.upstreamMs >= 0) perRoute.upstream.observe(record.upstreamMs / 1000);
    if (record.checkMs >= 0) this.check.observe(record.checkMs / 1000);
    if (event.fail_open) perRoute.failOpen.inc();
  }
}
