/**
 * The gateway's own answers, with a stand-in decision function in place of the sidecar and real
 * HTTP upstreams: malformed targets, unmatched paths, upstream failures and timeouts, and the one
 * audit event each request leaves.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { auditEventSchema, type AuditEvent } from '../../common/audit-event.js';
import { parseConfig } from '../../common/config/load.js';
import { silentLogger } from '../../common/logger.js';
import type { CheckRequest, CheckResponse__Output } from '../../common/proto.js';
import { buildGateway, type Gateway } from '../../gateway/app.js';
import { freePort, eventually } from '../helpers/net.js';

function allowAnswer(): CheckResponse__Output {
  return {
    allow: true,
    http_status: 200,
    reason: '',
    detail: '',
    identity: null,
    upstream_headers: {},
    client_headers: {},
    rate_limit: null,
    fail_open: false,
    shadow: false,
  };
}

describe('gateway handler', () => {
  let slow: Server;
  let ok: Server;
  let gateway: Gateway;
  let server: Server;
  let base: string;
  const events: AuditEvent[] = [];
  const checks: CheckRequest[] = [];
  let sidecarUp = true;
  let answer: (req: CheckRequest) => Promise<CheckResponse__Output> = async () => allowAnswer();

  before(async () => {
    ok = createServer((req, res) => res.end(JSON.stringify({ url: req.url })));
    slow = createServer(() => undefined); // never answers
    await Promise.all([ok, slow].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const closedPort = await freePort();
    const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const config = parseConfig(
      JSON.stringify({
        routes: [
          { name: 'ok', paths: ['/ok'], upstream: url(ok), auth: 'none' },
          { name: 'slow', paths: ['/slow'], upstream: url(slow), auth: 'none', upstream_timeout_ms: 200 },
          { name: 'down', paths: ['/down'], upstream: `http://127.0.0.1:${closedPort}`, auth: 'none' },
          { name: 'prefixed', paths: ['/prefixed'], upstream: `${url(ok)}/v2`, auth: 'none' },
        ],
      }),
    );
    gateway = buildGateway({
      config,
      sidecar: { check: (req) => (checks.push(req), answer(req)), token: () => Promise.reject(new Error('no token endpoints here')) },
      publisher: { publish: (event) => events.push(event) },
      gatewayId: 'test-gw',
      logger: silentLogger(),
      health: () => ({ sidecar: sidecarUp }),
    });
    server = createServer(gateway.listener);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    gateway.close();
    for (const s of [server, ok, slow]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  beforeEach(() => {
    answer = async () => allowAnswer();
  });

  async function eventOf(requestId: string): Promise<AuditEvent> {
    return eventually(() => events.find((e) => e.request_id === requestId), 5000, `audit event ${requestId}`);
  }

  it('proxies the normalized path, so a dot segment cannot reach another route', async () => {
    const res = await fetch(`${base}/ok/a/%2e%2e/b?q=1`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ url: '/ok/b?q=1' });
    const event = await eventOf(res.headers.get('x-request-id')!);
    expect(event).to.include({ decision: 'allow', reason: null, route: 'ok', path: '/ok/b', status: 200, upstream_status: 200 });
    expect(checks.at(-1)?.path).to.equal('/ok/b');
  });

  it('cuts every text field over its audit limit, never inside a surrogate pair, and lists the cut fields', async () => {
    // Limits count code points (as zod does): the emoji is the 512th, two UTF-16 units at 511-512.
    const jti = `${'j'.repeat(511)}\u{1F600}k`;
    const consumer = `issuer:${'c'.repeat(700)}`;
    answer = async () => ({
      ...allowAnswer(),
      identity: { sub: 'alice', consumer, username: 'alice', groups: [], jti, tier: '', issuer: 'issuer', iat: 0, kid: '', valid_until: 0 },
      rate_limit: { limit: `route:${'r'.repeat(300)}:minute`, window: 'minute', max: 10, remaining: 9, reset_s: 60 },
    });
    const res = await fetch(`${base}/ok/${'p'.repeat(5000)}`, { headers: { 'User-Agent': 'u'.repeat(600) } });
    expect(res.status).to.equal(200);
    const event = await eventOf(res.headers.get('x-request-id')!);
    const parsed = auditEventSchema.safeParse(event);
    expect(parsed.success, JSON.stringify(parsed.error?.issues.map((i) => i.path.join('.')))).to.equal(true);
    expect(event.path).to.equal(`/ok/${'p'.repeat(5000)}`.slice(0, 4096));
    expect(event.user_agent).to.equal('u'.repeat(512));
    expect(event.consumer).to.equal(consumer.slice(0, 640));
    expect(event.jti).to.equal(`${'j'.repeat(511)}\u{1F600}`);
    expect(event.sub).to.equal('alice');
    expect(event.rate_limit?.limit).to.have.length(200);
    expect(event.truncated).to.have.members(['path', 'user_agent', 'consumer', 'jti', 'rate_limit.limit']);
  });

  it('lists no field as truncated when every value fits', async () => {
    const res = await fetch(`${base}/ok/short`);
    const event = await eventOf(res.headers.get('x-request-id')!);
    expect(event.truncated).to.deep.equal([]);
  });

  it("puts the upstream URL's own path before the request's", async () => {
    const res = await fetch(`${base}/prefixed/x?q=1`);
    expect(await res.json()).to.deep.equal({ url: '/v2/prefixed/x?q=1' });
  });

  it('answers 404 no_route for a path no route serves, without asking the sidecar', async () => {
    const before = checks.length;
    const res = await fetch(`${base}/nowhere`);
    expect(res.status).to.equal(404);
    expect(await res.json()).to.include({ reason: 'no_route' });
    expect(checks.length).to.equal(before);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'deny', reason: 'no_route', route: null });
  });

  it('answers 400 bad_request to a malformed percent escape', async () => {
    const res = await fetch(`${base}/ok/%zz`);
    expect(res.status).to.equal(400);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'deny', reason: 'bad_request', detail: 'path_malformed' });
  });

  it('answers 502 upstream_error when the upstream refuses the connection', async () => {
    const res = await fetch(`${base}/down`);
    expect(res.status).to.equal(502);
    expect(await res.json()).to.include({ reason: 'upstream_error' });
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'allow', reason: 'upstream_error', detail: 'ECONNREFUSED', status: 502 });
  });

  it('answers 504 upstream_timeout when the upstream does not answer in time', async () => {
    const res = await fetch(`${base}/slow`);
    expect(res.status).to.equal(504);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ reason: 'upstream_timeout', status: 504 });
  });

  it('answers 503 auth_unavailable when the sidecar call fails', async () => {
    answer = () => Promise.reject(Object.assign(new Error('deadline'), { code: 4 }));
    const res = await fetch(`${base}/ok`);
    expect(res.status).to.equal(503);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'deadline_exceeded' });
  });

  it('keeps a well-formed client request id and replaces a malformed one', async () => {
    const kept = await fetch(`${base}/ok`, { headers: { 'X-Request-Id': 'trace-12345678' } });
    expect(kept.headers.get('x-request-id')).to.equal('trace-12345678');
    const replaced = await fetch(`${base}/ok`, { headers: { 'X-Request-Id': 'bad id\twith tab' } });
    expect(replaced.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
  });

  it('answers its own health endpoint without auditing it, 503 while a dependency is down', async () => {
    const before = events.length;
    const up = await fetch(`${base}/__gateway/health`);
    expect(up.status).to.equal(200);
    expect(await up.json()).to.deep.equal({ status: 'ok', gateway_id: 'test-gw', checks: { sidecar: true } });
    sidecarUp = false;
    const down = await fetch(`${base}/__gateway/health`);
    expect(down.status).to.equal(503);
    expect((await down.json()).status).to.equal('degraded');
    sidecarUp = true;
    expect(events.length).to.equal(before);
  });

  it('fails closed with 503 on a deny reason it does not know, and stays up', async () => {
    answer = async () => ({ ...allowAnswer(), allow: false, http_status: 418, reason: 'teapot', detail: 'x' });
    const res = await fetch(`${base}/ok`);
    expect(res.status).to.equal(503);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'unknown_reason:teapot' });
  });

  it('fails closed with 503 on a header value it cannot send, and stays up', async () => {
    answer = async () => ({ ...allowAnswer(), client_headers: { 'RateLimit-Limit': 'bad\r\nSet-Cookie: x=1' } });
    const res = await fetch(`${base}/ok`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('set-cookie')).to.equal(null);
    expect(await eventOf(res.headers.get('x-request-id')!)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'answer_unusable' });
    answer = async () => allowAnswer();
    expect((await fetch(`${base}/ok`)).status).to.equal(200);
  });
});
