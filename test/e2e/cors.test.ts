/**
 * CORS through the built processes, sent as a browser (and an attacker) would: preflights
 * answered and audited by the gateway, refused ones named; actual requests from allowed origins
 * with their headers (error answers too, so the page can read them), foreign origins without;
 * per-route policies and cors: false; an upstream's own `*` replaced; security headers on the
 * gateway's own answers.
 */
import { expect } from 'chai';
import { UPSTREAM_CORS_HEADER } from '../helpers/recording-upstream.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

const APP = 'https://app.example.com';

describe('CORS and the gateway\'s own security headers', function () {
  this.timeout(120_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
cors: { origins: ["${APP}", "https://*.example.org"], methods: [GET, POST, PUT], allow_headers: [authorization, content-type], expose_headers: [x-request-id], credentials: true, max_age: 300 }
routes:
  - { name: api, paths: [/api], upstream: "${upstream}", methods: [GET, POST, PUT] }
  - { name: public, paths: [/public], upstream: "${upstream}", auth: none, cors: { origins: ["*"] } }
  - { name: internal, paths: [/internal], upstream: "${upstream}", auth: none, cors: false }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const preflight = (path: string, origin: string, method: string, headers?: string) =>
    stack.call(path, { Origin: origin, 'Access-Control-Request-Method': method, ...(headers ? { 'Access-Control-Request-Headers': headers } : {}) }, undefined, 'OPTIONS');
  const cors = (h: Headers) => Object.fromEntries([...h].filter(([name]) => name.startsWith('access-control-') || name === 'vary'));

  it('answers an allowed preflight itself with 204 and exactly the policy, audited, never asking the sidecar or the upstream', async () => {
    const sent = stack.upstream.requests.length;
    const res = await preflight('/api/orders', APP, 'PUT', 'Authorization, Content-Type');
    expect(res.status).to.equal(204);
    expect(cors(res.headers)).to.deep.equal({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST, PUT',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-max-age': '300',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(stack.upstream.requests.length).to.equal(sent);
    expect(await stack.auditEvent(res.requestId)).to.include({ decision: 'allow', detail: 'cors_preflight', status: 204, route: 'api', method: 'OPTIONS' });
  });

  it('refuses a preflight from a foreign origin, for a method or a header not allowed: 403 cors_refused naming which, audited, no CORS headers', async () => {
    const cases: [string, string, string | undefined, string][] = [
      ['https://evil.example.com', 'GET', undefined, 'cors_origin'],
      ['https://app.example.com.evil.net', 'GET', undefined, 'cors_origin'],
      ['null', 'GET', undefined, 'cors_origin'],
      [APP, 'DELETE', undefined, 'cors_method'],
      [APP, 'GET', 'authorization, x-admin', 'cors_headers'],
    ];
    for (const [origin, method, headers, detail] of cases) {
      const res = await preflight('/api/orders', origin, method, headers);
      expect(res.status, `${origin} ${method} ${headers}`).to.equal(403);
      expect(res.headers.get('access-control-allow-origin')).to.equal(null);
      expect(await stack.auditEvent(res.requestId)).to.include({ decision: 'deny', reason: 'cors_refused', detail, status: 403 });
    }
  });

  it('puts the headers on answers to an allowed origin, a subdomain pattern\'s too, refusals included; a foreign origin gets none', async () => {
    const token = stack.token({ sub: 'browser' });
    const ok = await stack.call('/api/orders', { Origin: APP, Authorization: `Bearer ${token}` });
    expect(ok.status).to.equal(200);
    expect(cors(ok.headers)).to.deep.equal({ 'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-request-id', vary: 'Origin' });
    const sub = await stack.call('/api/orders', { Origin: 'https://shop.eu.example.org', Authorization: `Bearer ${token}` });
    expect(sub.headers.get('access-control-allow-origin')).to.equal('https://shop.eu.example.org');
    // A refusal the page must be able to read (401, then its WWW-Authenticate).
    const refused = await stack.call('/api/orders', { Origin: APP });
    expect(refused.status).to.equal(401);
    expect(refused.headers.get('access-control-allow-origin')).to.equal(APP);
    const foreign = await stack.call('/api/orders', { Origin: 'https://evil.example.com', Authorization: `Bearer ${token}` });
    expect(foreign.status).to.equal(200);
    expect(cors(foreign.headers)).to.deep.equal({ vary: 'Origin' });
    expect((await stack.call('/api/orders', { Origin: 'https://example.org', Authorization: `Bearer ${token}` })).headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('replaces an upstream\'s own CORS headers on a CORS route, keeping its Vary with Origin; per-route * and cors: false', async () => {
    const token = stack.token({ sub: 'browser' });
    const widened = await stack.call('/api/x', { Origin: 'https://evil.example.com', Authorization: `Bearer ${token}`, [UPSTREAM_CORS_HEADER]: '1' });
    expect(cors(widened.headers)).to.deep.equal({ vary: 'Accept, Origin' });
    const pub = await stack.call('/public/x', { Origin: 'https://anyone.example' });
    expect(pub.headers.get('access-control-allow-origin')).to.equal('*');
    expect(pub.headers.get('access-control-allow-credentials')).to.equal(null);
    const internal = await stack.call('/internal/x', { Origin: APP, [UPSTREAM_CORS_HEADER]: '1' });
    expect(internal.headers.get('access-control-allow-origin')).to.equal('*'); // no policy: the upstream's answer as it is
    const plainOptions = await stack.call('/internal/x', { Origin: APP, 'Access-Control-Request-Method': 'GET' }, undefined, 'OPTIONS');
    expect(plainOptions.status).to.equal(200); // proxied like any OPTIONS: the route has no CORS
  });

  it("sets nosniff on the gateway's own answers, no X-Powered-By, and no Strict-Transport-Security over plain HTTP", async () => {
    const missing = await stack.call('/nowhere');
    expect(missing.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(missing.headers.get('strict-transport-security')).to.equal(null);
    const own = await fetch(`${stack.gatewayUrl}/__gateway/health`);
    expect(own.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(own.headers.get('x-powered-by')).to.equal(null);
  });
});
