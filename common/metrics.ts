/**
 * What every process's metrics share: a registry of its own with Node's default process metrics,
 * latency buckets in seconds, and counters read from a number the code already keeps.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ExportCounts } from './tracing/span-exporter.js';

/** Request and call latencies, in seconds: 1 ms to 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** A counter whose value is `read()` at each scrape (a total the code keeps anyway). */
export function counterReading(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge whose value is `read()` at each scrape; a failed read leaves it unset. */
export function gaugeReading(registry: Registry, name: string, help: string, read: () => number | Promise<number>): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      this.set(await read());
    },
  });
}

/** `status_class` label of an HTTP status: 2xx ... 5xx; `none` when nothing was sent. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none';
}

/** `<prefix>_config_info{hash}` 1: the active config's hash (common/config/live-config.ts), one series at a time. */
export function configInfo(registry: Registry, prefix: string, hash: () => string): void {
  new Gauge({
    name: `${prefix}_config_info`,
    help: "The active config's hash (the label); always 1",
    labelNames: ['hash'],
    registers: [registry],
    collect() {
      this.reset();
      this.labels(hash()).set(1);
    },
  });
}

/** `<prefix>_trace_spans_exported_total`, `_dropped_total`, `_trace_exports_failed_total`: the OpenTelemetry export (README: Tracing). */
export function spanExportMetrics(registry: Registry, prefix: string, counts: ExportCounts): void {
  counterReading(registry, `${prefix}_trace_spans_exported_total`, 'Spans the OpenTelemetry collector took', () => counts.exported);
  counterReading(registry, `${prefix}_trace_spans_dropped_total`, 'Spans dropped: the export queue was full, or their export failed for good', () => counts.dropped);
  counterReading(registry, `${prefix}_trace_exports_failed_total`, 'Span exports that failed (each retried or dropped)', () => counts.failedExports);
}
