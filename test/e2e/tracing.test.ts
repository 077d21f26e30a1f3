/**
 * W3C trace context through the built processes, sent as a client (and an attacker) would: a
 * valid traceparent kept (new parent id, tracestate passed on), a missing or invalid one replaced
 * by a new trace (tracestate dropped), the trace id and config hash in the audit event of every
 * request, refused ones too, found again with the trace_id filter; the gateway's and the
 * sidecar's spans exported over OTLP only for sampled traces; sample_ratio and the config hash
 * following a reload.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { OtlpCollector } from '../helpers/otlp-collector.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const COLLECTOR_KEY = 'otlp-key-0123456789';

/** A fresh, valid trace id and parent id (the test is the client). */
function clientTrace(): { traceId: string; parentId: string } {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('').replace(/^0/, '1');
  return { traceId: hex(32), parentId: hex(16) };
}

describe('tracing', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let collector: OtlpCollector;

  before(async () => {
    collector = await OtlpCollector.start();
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: api, paths: [/api], upstream: "${upstream}" }
  - { name: public, paths: [/public], upstream: "${upstream}", auth: none }
tracing:
  otlp: { endpoint: "${collector.url}", flush_ms: 50, headers: { x-api-key: ${COLLECTOR_KEY} } }
`,
    );
  });

  after(async () => {
    await stack?.stop();
    await collector?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const bearer = () => ({ Authorization: `Bearer ${stack.token({ sub: 'tracer' })}` });
  /** The traceparent the upstream got for a request, parsed. */
  const forwarded = (requestId: string) => {
    const sent = stack.upstream.find(requestId);
    expect(sent, 'the upstream got the request').to.not.equal(undefined);
    const match = TRACEPARENT.exec(String(sent!.headers.traceparent));
    expect(match, `traceparent ${sent!.headers.traceparent}`).to.not.equal(null);
    return { traceId: match![1]!, spanId: match![2]!, flags: match![3]!, tracestate: sent!.headers.tracestate };
  };
  const gatewayHash = async () => ((await (await fetch(`${stack.statusUrl.gateway}/readyz`)).json()) as { config_hash: string }).config_hash;

  it('keeps a valid traceparent: same trace and flags, the gateway span as the new parent, tracestate passed on, trace and config hash stored', async () => {
    const { traceId, parentId } = clientTrace();
    const res = await stack.call('/api/orders', { ...bearer(), traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    expect(res.status).to.equal(200);
    const sent = forwarded(res.requestId);
    expect(sent).to.include({ traceId, flags: '01', tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    expect(sent.spanId).to.not.equal(parentId);
    const event = await stack.auditEvent(res.requestId);
    expect(event.trace_id).to.equal(traceId);
    expect(event.config_hash).to.equal(await gatewayHash()).and.match(/^[0-9a-f]{16}$/);
  });

  it('keeps a later version by its known fields and sends version 00; drops reserved flag bits', async () => {
    const { traceId, parentId } = clientTrace();
    const res = await stack.call('/public/v', { traceparent: `01-${traceId}-${parentId}-09-future` });
    expect(forwarded(res.requestId)).to.include({ traceId, flags: '01' });
    expect((await stack.auditEvent(res.requestId)).trace_id).to.equal(traceId);
  });

  it('starts a new trace when none is sent, and drops a tracestate that came without a valid traceparent', async () => {
    const res = await stack.call('/public/new', { tracestate: 'evil=1' });
    const sent = forwarded(res.requestId);
    expect(sent.flags).to.equal('01'); // sample_ratio defaults to 1
    expect(sent.tracestate).to.equal(undefined);
    expect((await stack.auditEvent(res.requestId)).trace_id).to.equal(sent.traceId);
  });

  it('replaces every invalid traceparent with a new trace, never passing the client\'s value or tracestate on', async () => {
    const { traceId, parentId } = clientTrace();
    const invalid = [
      `00-${traceId.toUpperCase()}-${parentId}-01`,
      `00-${'0'.repeat(32)}-${parentId}-01`,
      `00-${traceId}-${'0'.repeat(16)}-01`,
      `ff-${traceId}-${parentId}-01`,
      `00-${traceId}-${parentId}-01-extra`,
      `00-${traceId}-${parentId}-0g`,
      `00-${traceId}-${parentId}`,
      'x'.repeat(4000),
    ];
    const seen = new Set<string>();
    for (const header of invalid) {
      const res = await stack.call('/public/bad', { traceparent: header, tracestate: 'vendor=kept-only-with-a-valid-parent' });
      expect(res.status, header).to.equal(200);
      const sent = forwarded(res.requestId);
      expect(sent.traceId, header).to.not.equal(traceId).and.not.equal('0'.repeat(32));
      expect(sent.tracestate, header).to.equal(undefined);
      expect((await stack.auditEvent(res.requestId)).trace_id, header).to.equal(sent.traceId);
      seen.add(sent.traceId);
    }
    expect(seen.size).to.equal(invalid.length);
  });

  it('two traceparent headers are invalid (a new trace)', async () => {
    const a = clientTrace();
    const b = clientTrace();
    // fetch joins repeated headers as Node would receive them: "x, y".
    const res = await stack.call('/public/two', { traceparent: `00-${a.traceId}-${a.parentId}-01, 00-${b.traceId}-${b.parentId}-01` });
    const sent = forwarded(res.requestId);
    expect([a.traceId, b.traceId]).to.not.include(sent.traceId);
  });

  it('stores the trace of refused requests too, and the trace_id filter finds every request of a trace, allowed and refused', async () => {
    const { traceId, parentId } = clientTrace();
    const traceparent = `00-${traceId}-${parentId}-01`;
    const refused = await stack.call('/api/secret', { traceparent });
    expect(refused.status).to.equal(401);
    expect(stack.upstream.find(refused.requestId)).to.equal(undefined);
    const allowed = await stack.call('/api/secret', { ...bearer(), traceparent });
    expect(allowed.status).to.equal(200);
    const noRoute = await stack.call('/nowhere', { traceparent });
    expect(noRoute.status).to.equal(404);
    for (const id of [traceId, traceId.toUpperCase()]) {
      const events = await stack.auditEvents({ trace_id: id }, (e) => e.length === 3);
      expect(events.map((e) => [e.request_id, e.status]).sort()).to.deep.equal(
        [[refused.requestId, 401], [allowed.requestId, 200], [noRoute.requestId, 404]].sort(),
      );
    }
    const bad = await fetch(`${stack.auditUrl}/v1/events?trace_id=not-a-trace`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    expect(bad.status).to.equal(400);
    expect(JSON.stringify(await bad.json())).to.include('must be a W3C trace id: 32 hex characters');
  });

  it('exports the gateway span (the client span its parent) and the sidecar span (the gateway span its parent) of a sampled trace, none of an unsampled one', async () => {
    const unsampled = clientTrace();
    const quiet = await stack.call('/api/quiet', { ...bearer(), traceparent: `00-${unsampled.traceId}-${unsampled.parentId}-00` });
    expect(forwarded(quiet.requestId)).to.include({ traceId: unsampled.traceId, flags: '00' });
    const { traceId, parentId } = clientTrace();
    const token = bearer();
    const res = await stack.call('/api/orders/7?secret=query-value', { ...token, traceparent: `00-${traceId}-${parentId}-01` });
    const sent = forwarded(res.requestId);
    const spans = await eventually(() => {
      const found = collector.spans.filter((s) => s.traceId === traceId);
      return found.length === 2 ? found : undefined;
    }, 10_000, 'the two spans of the trace');
    const gateway = spans.find((s) => s.service === 'apigw-gateway')!;
    const sidecar = spans.find((s) => s.service === 'apigw-auth-sidecar')!;
    expect(gateway).to.include({ spanId: sent.spanId, parentSpanId: parentId, name: 'GET api', kind: 2 });
    expect(gateway.attributes).to.include({ 'http.route': 'api', 'url.path': '/api/orders/7', 'http.response.status_code': 200, 'apigw.decision': 'allow', 'apigw.request_id': res.requestId });
    expect(sidecar).to.include({ parentSpanId: sent.spanId, name: 'authorize api', kind: 2 });
    expect(sidecar.attributes).to.include({ 'apigw.decision': 'allow', 'apigw.request_id': res.requestId });
    expect(BigInt(gateway.startTimeUnixNano) <= BigInt(sidecar.startTimeUnixNano)).to.equal(true);
    expect(BigInt(sidecar.endTimeUnixNano) <= BigInt(gateway.endTimeUnixNano)).to.equal(true);
    expect(collector.exports.every((e) => e.headers['x-api-key'] === COLLECTOR_KEY)).to.equal(true);
    // No credential or query string in any span.
    const all = JSON.stringify(collector.exports.map((e) => e.spans));
    expect(all).to.not.include(token.Authorization.slice(7)).and.not.include('query-value');
    expect(collector.spans.filter((s) => s.traceId === unsampled.traceId)).to.deep.equal([]);
    const metrics = await (await fetch(`${stack.statusUrl.gateway}/metrics`)).text();
    expect(Number(/^gateway_trace_spans_exported_total (\d+)$/m.exec(metrics)?.[1])).to.be.greaterThan(0);
  });

  it('applies a new sample_ratio on reload, and the audit events carry the new config hash', async () => {
    const file = stack.env.GATEWAY_CONFIG!;
    const before = await gatewayHash();
    writeFileSync(file, readFileSync(file, 'utf8').replace('tracing:\n', 'tracing:\n  sample_ratio: 0\n'));
    const after = await eventually(async () => {
      const hash = await gatewayHash();
      return hash !== before ? hash : undefined;
    }, 5_000, 'the reloaded config');
    const res = await stack.call('/public/after-reload');
    const sent = forwarded(res.requestId);
    expect(sent.flags).to.equal('00');
    const event = await stack.auditEvent(res.requestId);
    expect(event).to.include({ trace_id: sent.traceId, config_hash: after });
  });
});
