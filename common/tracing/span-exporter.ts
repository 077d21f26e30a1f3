/**
 * OpenTelemetry export over OTLP/HTTP with the JSON encoding (config `tracing.otlp`; README:
 * Tracing). Spans are queued as plain objects on the request path and turned into OTLP JSON only
 * when a batch is sent: at `batch_size` spans or `flush_ms` after the first, one export at a time.
 * A collector that is away or slow costs a bounded queue (`max_queue`; beyond it new spans are
 * dropped and counted), never a request: a failed retryable export (network error, 429, 502, 503,
 * 504) is sent again with a backoff, any other failure drops its batch. Without `otlp` the
 * exporter is disabled and callers skip it with one property read.
 */
import type { Logger } from '../logger.js';
import type { OtlpConfig } from '../config/tracing-schema.js';

/** OTLP SpanKind. */
export const SPAN_KIND_SERVER = 2;

export interface Span {
  traceId: string;
  spanId: string;
  /** The caller's span; undefined for the root of a trace. */
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  /** Unix epoch, milliseconds with a fraction (performance.timeOrigin + performance.now()). */
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean | null>;
  error: boolean;
}

export interface ExportCounts {
  /** Spans the collector took. */
  exported: number;
  /** Spans dropped: the queue was full, or their export failed for good. */
  dropped: number;
  /** Export attempts that failed (each retried or dropped). */
  failedExports: number;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const MAX_BACKOFF_MS = 30_000;
/** The longest a batch sent at close may take (the process stop has 10 s in all). */
const CLOSE_TIMEOUT_MS = 2_000;

export class SpanExporter {
  readonly counts: ExportCounts = { exported: 0, dropped: 0, failedExports: 0 };
  private otlp: OtlpConfig | undefined;
  private queue: Span[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The export under way, if any: one at a time. */
  private running: Promise<void> | undefined;
  private failuresInARow = 0;

  /** `service`: service.name of the spans; `instance`: service.instance.id (the gateway id, the host). */
  constructor(private readonly service: string, private readonly instance: string, private readonly logger: Logger) {}

  /** Whether spans are exported; a caller builds a span only then. */
  get enabled(): boolean {
    return this.otlp !== undefined;
  }

  /** The export settings of a new config; what is queued goes out under them. Undefined turns export off (the queue is dropped, counted). */
  configure(otlp: OtlpConfig | undefined): void {
    this.otlp = otlp;
    this.failuresInARow = 0;
    if (otlp) return;
    this.counts.dropped += this.queue.length;
    this.queue = [];
  }

  add(span: Span): void {
    const otlp = this.otlp;
    if (!otlp) return;
    if (this.queue.length >= otlp.max_queue) {
      this.counts.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= otlp.batch_size && this.failuresInARow === 0) this.exportNow();
    else this.exportLater();
  }

  /**
   * Sends what is queued and stops exporting (process stop): one try a batch of at most
   * CLOSE_TIMEOUT_MS, and after a failed one the rest is dropped (counted), so a stop waits for a
   * collector that is away once, besides an export already under way.
   */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const otlp = this.otlp;
    this.otlp = undefined;
    if (!otlp) return;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, otlp.batch_size);
      if ((await this.post(otlp, batch, Math.min(otlp.timeout_ms, CLOSE_TIMEOUT_MS))) === true) continue;
      this.counts.dropped += batch.length + this.queue.length;
      this.queue = [];
    }
  }

  private exportNow(): void {
    if (this.running) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.exportQueued().finally(() => {
      this.running = undefined;
      this.exportLater();
    });
  }

  /** A timer for what is queued: flush_ms, or the backoff after failures in a row (doubling, up to 30 s). */
  private exportLater(): void {
    const otlp = this.otlp;
    if (this.running || this.timer || !otlp || this.queue.length === 0) return;
    const delay = this.failuresInARow === 0 ? otlp.flush_ms : Math.min(MAX_BACKOFF_MS, otlp.flush_ms * 2 ** this.failuresInARow);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.exportNow();
    }, delay);
    this.timer.unref();
  }

  /** Full batches back to back; a partial one, or a failure, waits for the timer. */
  private async exportQueued(): Promise<void> {
    for (let otlp = this.otlp; otlp && this.queue.length > 0; otlp = this.otlp) {
      const batch = this.queue.splice(0, otlp.batch_size);
      if (!(await this.send(otlp, batch)) || this.queue.length < otlp.batch_size) return;
    }
  }

  /** Whether the collector took `batch`; a retryable failure puts it back at the head of the queue, as far as there is room. */
  private async send(otlp: OtlpConfig, batch: Span[]): Promise<boolean> {
    const outcome = await this.post(otlp, batch);
    if (outcome === true) {
      if (this.failuresInARow > 0) this.logger.info('span export recovered', { code: 'trace_export_recovered', after_failures: this.failuresInARow });
      this.failuresInARow = 0;
      return true;
    }
    this.failuresInARow++;
    const kept = outcome === 'retry' && this.otlp ? batch.slice(0, Math.max(0, this.otlp.max_queue - this.queue.length)) : [];
    this.queue.unshift(...kept);
    this.counts.dropped += batch.length - kept.length;
    return false;
  }

  /** true: taken; 'retry': worth sending again; false: refused for good. Logs the first failure of a run. */
  private async post(otlp: OtlpConfig, batch: Span[], timeoutMs = otlp.timeout_ms): Promise<true | 'retry' | false> {
    let failure: { status: number | null; error: string };
    try {
      const res = await fetch(otlp.endpoint, {
        method: 'POST',
        headers: { ...otlp.headers, 'content-type': 'application/json' },
        body: JSON.stringify(this.toOtlp(batch)),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.counts.exported += batch.length;
        return true;
      }
      failure = { status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      failure = { status: null, error: (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message };
    }
    this.counts.failedExports++;
    const retry = failure.status === null || RETRYABLE_STATUS.has(failure.status);
    // The endpoint is named without its query (a key may ride there); the headers never.
    if (this.failuresInARow === 0) this.logger.warn('span export failed', { code: 'trace_export_failed', endpoint: endpointForLog(otlp.endpoint), error: failure.error, retry });
    return retry ? 'retry' : false;
  }

  private toOtlp(batch: Span[]): unknown {
    return {
      resourceSpans: [
        {
          resource: { attributes: attributes({ 'service.name': this.service, 'service.instance.id': this.instance }) },
          scopeSpans: [
            {
              scope: { name: 'apigw' },
              spans: batch.map((s) => ({
                traceId: s.traceId,
                spanId: s.spanId,
                ...(s.parentSpanId !== undefined && { parentSpanId: s.parentSpanId }),
                name: s.name,
                kind: s.kind,
                startTimeUnixNano: unixNano(s.startMs),
                endTimeUnixNano: unixNano(s.endMs),
                attributes: attributes(s.attributes),
                status: { code: s.error ? 2 : 0 },
              })),
            },
          ],
        },
      ],
    };
  }
}

/** OTLP JSON attributes; null values are left out. */
function attributes(values: Span['attributes']): unknown[] {
  const list: unknown[] = [];
  for (const key in values) {
    const v = values[key];
    if (v === null || v === undefined) continue;
    const value = typeof v === 'string' ? { stringValue: v } : typeof v === 'boolean' ? { boolValue: v } : Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
    list.push({ key, value });
  }
  return list;
}

/** Epoch milliseconds (with a fraction) as the decimal string of nanoseconds OTLP JSON wants, exact to the microsecond. */
function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1000)) * 1000n).toString();
}

function endpointForLog(endpoint: string): string {
  const url = new URL(endpoint);
  return `${url.origin}${url.pathname}`;
}

/** Now, as Unix epoch milliseconds with a fraction. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
