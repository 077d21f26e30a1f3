/** W3C traceparent parsing and writing, tracestate passing, random ids, and the tracing config. */
import { expect } from 'chai';
import { formatIssues } from '../../common/config/load.js';
import { configSchema } from '../../common/config/schema.js';
import { keptTracestate, parseTraceparent, TraceIds, traceparent } from '../../common/tracing/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('W3C trace context', () => {
  it('reads a valid version-00 traceparent, keeping the sampled and random flags and dropping reserved bits', () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 1 });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 0 });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-ff`)).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 3 });
  });

  it('reads a later version by its first four fields, with or without more after a dash (forward compatibility)', () => {
    expect(parseTraceparent(`01-${TRACE}-${PARENT}-01`)).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 1 });
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-the-future-holds`)).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 1 });
  });

  it('refuses every invalid form, so the gateway starts a new trace', () => {
    const invalid = [
      undefined,
      '',
      `00-${TRACE}-${PARENT}`,
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 is exactly 55 characters
      `01-${TRACE}-${PARENT}-01extra`, // a later version's extra fields follow a dash
      `ff-${TRACE}-${PARENT}-01`, // version ff is forbidden
      `0g-${TRACE}-${PARENT}-01`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // lower-case hex only
      `00-${TRACE}-${PARENT.toUpperCase()}-01`,
      `00-${'0'.repeat(32)}-${PARENT}-01`, // all-zero ids are invalid
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-${PARENT}-0x`,
      `00_${TRACE}_${PARENT}_01`,
      ` 00-${TRACE}-${PARENT}-0`,
      `00-${TRACE}-${PARENT}-01, 00-${TRACE}-${PARENT}-01`, // two headers, joined by Node
      [`00-${TRACE}-${PARENT}-01`],
    ];
    for (const header of invalid) expect(parseTraceparent(header), String(header)).to.equal(undefined);
  });

  it('writes version 00 with two-digit flags, and reads back what it wrote', () => {
    expect(traceparent(TRACE, PARENT, 1)).to.equal(`00-${TRACE}-${PARENT}-01`);
    expect(traceparent(TRACE, PARENT, 0)).to.equal(`00-${TRACE}-${PARENT}-00`);
    expect(parseTraceparent(traceparent(TRACE, PARENT, 3))).to.deep.equal({ traceId: TRACE, parentId: PARENT, flags: 3 });
  });

  it('passes tracestate on when printable and at most 512 characters, joining several headers', () => {
    expect(keptTracestate('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')).to.equal('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    expect(keptTracestate(['a=1', 'b=2'])).to.equal('a=1,b=2');
    expect(keptTracestate(undefined)).to.equal(undefined);
    expect(keptTracestate(`a=${'x'.repeat(511)}`)).to.equal(undefined);
    expect(keptTracestate('a=1\u00e9')).to.equal(undefined);
  });

  it('makes random, distinct, well-formed ids across pool refills', () => {
    const ids = new TraceIds();
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      traces.add(ids.traceId());
      spans.add(ids.spanId());
    }
    expect(traces.size).to.equal(2_000);
    expect(spans.size).to.equal(2_000);
    for (const id of traces) expect(id).to.match(/^[0-9a-f]{32}$/);
    for (const id of spans) expect(id).to.match(/^[0-9a-f]{16}$/);
    expect(parseTraceparent(traceparent(ids.traceId(), ids.spanId(), 1))).to.not.equal(undefined);
  });

  it('config: tracing defaults to sampling every trace it starts and no export; otlp checks its endpoint, headers and bounds', () => {
    const base = { routes: [{ name: 'r', paths: ['/'], upstream: 'http://127.0.0.1:1', auth: 'none' }] };
    expect(configSchema.parse(base).tracing).to.deep.equal({ sample_ratio: 1 });
    const otlp = configSchema.parse({ ...base, tracing: { sample_ratio: 0.25, otlp: { endpoint: 'http://collector:4318/v1/traces', headers: { 'x-api-key': 'k' } } } }).tracing.otlp;
    expect(otlp).to.deep.equal({ endpoint: 'http://collector:4318/v1/traces', headers: { 'x-api-key': 'k' }, timeout_ms: 5_000, batch_size: 512, flush_ms: 1_000, max_queue: 8_192 });
    const problems = (tracing: unknown) => {
      const result = configSchema.safeParse({ ...base, tracing });
      return result.success ? [] : formatIssues(result.error.issues);
    };
    expect(problems({ sample_ratio: 1.5 })[0]).to.match(/^tracing\.sample_ratio: /);
    expect(problems({ otlp: { endpoint: 'ftp://collector/v1/traces' } })).to.deep.equal(['tracing.otlp.endpoint: must be an http:// or https:// URL, e.g. http://otel-collector:4318/v1/traces']);
    expect(problems({ otlp: { endpoint: 'http://c:4318/v1/traces', headers: { 'bad header': 'x' } } })).to.deep.equal(['tracing.otlp.headers.bad header: invalid key: must be a header name']);
    expect(problems({ otlp: { endpoint: 'http://c:4318/v1/traces', headers: { key: 'a\nb' } } })).to.deep.equal(['tracing.otlp.headers.key: must be printable ASCII, at most 4096 characters']);
    expect(problems({ otlp: { endpoint: 'http://c:4318/v1/traces', batch_size: 0 } })[0]).to.match(/^tracing\.otlp\.batch_size: /);
    expect(problems({ otlp: { endpoint: 'http://c:4318/v1/traces', extra: 1 } })[0]).to.match(/^tracing\.otlp: Unrecognized key/);
  });
});
