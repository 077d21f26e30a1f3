/**
 * The OTLP/HTTP span export against a real HTTP collector: the JSON it sends, batching by size and
 * by time, retrying what may succeed later, dropping (and counting) what cannot, a bounded queue
 * while the collector is away, no secret in its logs, and the last spans sent at close.
 */
import { expect } from 'chai';
import { otlpSchema } from '../../common/config/schema.js';
import { SPAN_KIND_SERVER, SpanExporter, type Span } from '../../common/tracing/span-exporter.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually, freePort } from '../helpers/net.js';
import { OtlpCollector } from '../helpers/otlp-collector.js';

const SECRET = 'collector-api-key-never-logged';

function span(i: number): Span {
  return {
    traceId: `${'a'.repeat(28)}${String(i).padStart(4, '0')}`,
    spanId: `${'b'.repeat(12)}${String(i).padStart(4, '0')}`,
    parentSpanId: i % 2 === 0 ? 'c'.repeat(16) : undefined,
    name: `GET route-${i}`,
    kind: SPAN_KIND_SERVER,
    startMs: 1_767_225_600_000.123,
    endMs: 1_767_225_600_001.5,
    attributes: { 'http.route': `route-${i}`, 'http.response.status_code': 200, 'apigw.fail_open': false, 'apigw.ratio': 0.5, 'apigw.reason': null },
    error: i === 1,
  };
}

describe('OTLP span export', function () {
  this.timeout(30_000);
  let collector: OtlpCollector;
  let exporter: SpanExporter;
  const otlp = (over: Record<string, unknown> = {}) => otlpSchema.parse({ endpoint: collector.url, headers: { 'x-api-key': SECRET }, ...over });

  afterEach(async () => {
    await exporter?.close();
    await collector?.close();
  });

  it('sends a full batch at once, as OTLP JSON with its resource, ids, nanosecond times, typed attributes and status', async () => {
    collector = await OtlpCollector.start();
    const { logger } = captureLogger();
    exporter = new SpanExporter('apigw-gateway', 'gw-1', logger);
    exporter.configure(otlp({ batch_size: 3, flush_ms: 60_000 }));
    for (let i = 0; i < 3; i++) exporter.add(span(i));
    await eventually(() => collector.exports.length === 1 || undefined, 5_000, 'one export');
    const [sent] = collector.exports;
    expect(sent!.path).to.equal('/v1/traces');
    expect(sent!.headers['content-type']).to.equal('application/json');
    expect(sent!.headers['x-api-key']).to.equal(SECRET);
    expect(sent!.spans).to.have.length(3);
    expect(sent!.spans[0]).to.deep.equal({
      service: 'apigw-gateway',
      traceId: `${'a'.repeat(28)}0000`,
      spanId: `${'b'.repeat(12)}0000`,
      parentSpanId: 'c'.repeat(16),
      name: 'GET route-0',
      kind: 2,
      startTimeUnixNano: '1767225600000123000',
      endTimeUnixNano: '1767225600001500000',
      status: { code: 0 },
      attributes: { 'http.route': 'route-0', 'http.response.status_code': 200, 'apigw.fail_open': false, 'apigw.ratio': 0.5 },
    });
    expect(sent!.spans[1]).to.not.have.property('parentSpanId');
    expect(sent!.spans[1]!.status).to.deep.equal({ code: 2 });
    expect(exporter.counts).to.deep.equal({ exported: 3, dropped: 0, failedExports: 0 });
  });

  it('sends a partial batch after flush_ms', async () => {
    collector = await OtlpCollector.start();
    exporter = new SpanExporter('apigw-gateway', 'gw-1', captureLogger().logger);
    exporter.configure(otlp({ batch_size: 100, flush_ms: 50 }));
    exporter.add(span(0));
    exporter.add(span(1));
    await eventually(() => collector.spans.length === 2 || undefined, 5_000, 'the partial batch');
    expect(collector.exports).to.have.length(1);
  });

  it('sends a batch again after a retryable answer (503, 429), logs the failure once without the headers, and drops a batch refused for good (400)', async () => {
    collector = await OtlpCollector.start([503, 429, 200, 400]);
    const { logger, lines } = captureLogger();
    exporter = new SpanExporter('apigw-auth-sidecar', 'host-1', logger);
    exporter.configure(otlp({ batch_size: 2, flush_ms: 20 }));
    exporter.add(span(0));
    exporter.add(span(1));
    await eventually(() => exporter.counts.exported === 2 || undefined, 5_000, 'the batch, retried');
    expect(collector.exports.map((e) => e.status)).to.deep.equal([503, 429, 200]);
    expect(collector.exports.map((e) => e.spans.map((s) => s.spanId))).to.deep.equal(Array(3).fill([span(0).spanId, span(1).spanId]));
    expect(exporter.counts).to.deep.equal({ exported: 2, dropped: 0, failedExports: 2 });
    exporter.add(span(2));
    exporter.add(span(3));
    await eventually(() => (exporter.counts.dropped === 2 ? true : undefined), 5_000, 'the refused batch dropped');
    expect(collector.exports.map((e) => e.status)).to.deep.equal([503, 429, 200, 400]);
    const failures = lines.filter((l) => l.code === 'trace_export_failed');
    expect(failures.map((l) => [l.error, l.retry])).to.deep.equal([['HTTP 503', true], ['HTTP 400', false]]);
    expect(lines.filter((l) => l.code === 'trace_export_recovered')).to.have.length(1);
    expect(JSON.stringify(lines)).to.not.include(SECRET);
  });

  it('holds at most max_queue spans while the collector is away, counting the rest dropped, and sends what it held once it is back', async () => {
    const port = await freePort();
    const { logger, lines } = captureLogger();
    exporter = new SpanExporter('apigw-gateway', 'gw-1', logger);
    exporter.configure(otlpSchema.parse({ endpoint: `http://127.0.0.1:${port}/v1/traces?key=${SECRET}`, batch_size: 5, flush_ms: 10, max_queue: 5, timeout_ms: 500 }));
    for (let i = 0; i < 12; i++) exporter.add(span(i));
    await eventually(() => (exporter.counts.failedExports >= 2 ? true : undefined), 5_000, 'failed exports');
    expect(exporter.counts.exported).to.equal(0);
    expect(exporter.counts.dropped).to.equal(7);
    const failure = lines.find((l) => l.code === 'trace_export_failed');
    expect(failure).to.include({ endpoint: `http://127.0.0.1:${port}/v1/traces`, retry: true });
    expect(JSON.stringify(lines)).to.not.include(SECRET);
    // The first batch was under way while 5-9 filled the queue: it failed with no room to go back (0-4 and 10, 11 dropped).
    // A collector, and the exporter pointed at it: the held spans go once the backoff has passed.
    collector = await OtlpCollector.start();
    exporter.configure(otlp({ batch_size: 5, flush_ms: 10 }));
    await eventually(() => (collector.spans.length === 5 ? true : undefined), 10_000, 'the held spans');
    expect(collector.spans.map((s) => s.name)).to.deep.equal([5, 6, 7, 8, 9].map((i) => `GET route-${i}`));
  });

  it('at close, tries a collector that is away once and drops the rest, counted, rather than holding the stop', async () => {
    const port = await freePort();
    exporter = new SpanExporter('apigw-gateway', 'gw-1', captureLogger().logger);
    exporter.configure(otlpSchema.parse({ endpoint: `http://127.0.0.1:${port}/v1/traces`, batch_size: 2, flush_ms: 60_000, max_queue: 100 }));
    // Each full batch is exported at once and fails; then the queue holds what came meanwhile.
    for (let i = 0; i < 7; i++) exporter.add(span(i));
    await exporter.close();
    expect(exporter.counts.exported).to.equal(0);
    expect(exporter.counts.dropped).to.equal(7);
    expect(exporter.counts.failedExports).to.be.at.most(2);
  });

  it('exports nothing once turned off (queued spans dropped, counted), and sends what is queued at close', async () => {
    collector = await OtlpCollector.start();
    exporter = new SpanExporter('apigw-gateway', 'gw-1', captureLogger().logger);
    exporter.configure(otlp({ batch_size: 100, flush_ms: 60_000 }));
    exporter.add(span(0));
    exporter.configure(undefined);
    expect(exporter.enabled).to.equal(false);
    exporter.add(span(1));
    expect(exporter.counts.dropped).to.equal(1);
    exporter.configure(otlp({ batch_size: 100, flush_ms: 60_000 }));
    exporter.add(span(2));
    exporter.add(span(3));
    expect(collector.exports).to.have.length(0);
    await exporter.close();
    expect(collector.spans.map((s) => s.name)).to.deep.equal(['GET route-2', 'GET route-3']);
    expect(exporter.enabled).to.equal(false);
  });
});
