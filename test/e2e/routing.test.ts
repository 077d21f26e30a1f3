/**
 * Routes and upstreams through the real gateway and sidecar: methods (405 with Allow), hosts and
 * their precedence, strip_path and rewrite, preserve_host both ways, and a pool of two targets:
 * shares by weight, a killed target taken out with no failed GET (retried), a POST never retried,
 * back after the cool-down, and an immediate 503 when every target is down.
 */
import { request } from 'node:http';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

interface Sent {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  requestId: string;
  ms: number;
}

/** One request with full control of Host (fetch does not allow setting it). */
function send(base: string, path: string, options: { method?: string; host?: string; body?: string } = {}): Promise<Sent> {
  const url = new URL(base);
  const requestId = `rt-${Math.random().toString(36).slice(2)}`;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: options.method ?? 'GET',
        headers: { 'x-request-id': requestId, ...(options.host ? { host: options.host } : {}), ...(options.body ? { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(options.body) } : {}) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, requestId, ms: performance.now() - started }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('routing and upstream pools (running stack)', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let a: RecordingUpstream;
  let b: RecordingUpstream;
  const get = (path: string, options: { method?: string; host?: string; body?: string } = {}) => send(stack.gatewayUrl, path, options);
  const servedBy = (sent: Sent): string | undefined => (a.find(sent.requestId) ? 'a' : b.find(sent.requestId) ? 'b' : stack.upstream.find(sent.requestId) ? 'main' : undefined);

  before(async () => {
    a = await RecordingUpstream.start();
    b = await RecordingUpstream.start();
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
upstreams:
  - name: pair
    targets: [{ url: "${a.url}", weight: 3 }, { url: "${b.url}", weight: 1 }]
    health: { failures: 2, cooldown_s: 2 }
routes:
  - { name: search, paths: [/search], upstream: "${upstream}", auth: none, strip_path: true, methods: [GET, HEAD] }
  - { name: search-write, paths: [/search], upstream: "${upstream}", auth: none, methods: [POST] }
  - { name: find, paths: [/find], upstream: "${upstream}/base", auth: none, rewrite: /v2/lookup }
  - { name: host-exact, paths: [/h], upstream: "${upstream}", auth: none, hosts: [api.example.test], preserve_host: true }
  - { name: host-wild, paths: [/h], upstream: "${upstream}", auth: none, hosts: ["*.example.test"] }
  - { name: host-any, paths: [/h], upstream: "${upstream}", auth: none }
  - { name: pooled, paths: [/pool], upstream: pair, auth: none }
`,
    );
  });
  after(async () => {
    await stack?.stop();
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('strips or rewrites the matched prefix, sending the normalized path the sidecar authorized', async () => {
    const stripped = await get('/search/caf%c3%a9/./x?q=1');
    expect(stripped.status).to.equal(200);
    expect(stack.upstream.find(stripped.requestId)?.url).to.equal('/caf%C3%A9/x?q=1');
    expect(stack.upstream.find((await get('/search')).requestId)?.url).to.equal('/');
    const rewritten = await get('/find/a%2Db');
    expect(stack.upstream.find(rewritten.requestId)?.url).to.equal('/base/v2/lookup/a-b');
    expect(await stack.auditEvent(rewritten.requestId)).to.include({ route: 'find', path: '/find/a-b', upstream_target: `${stack.upstream.url}/base`, upstream_tries: 1 });
  });

  it('passes a method to the route that admits it, and answers 405 with Allow when none does', async () => {
    const post = await get('/search/x', { method: 'POST', body: 'hello' });
    expect(post.status).to.equal(200);
    expect(stack.upstream.find(post.requestId)?.url).to.equal('/search/x'); // search-write does not strip
    const refused = await get('/search/x', { method: 'DELETE' });
    expect(refused.status).to.equal(405);
    expect(refused.headers['allow']).to.equal('GET, HEAD, POST');
    expect(await stack.auditEvent(refused.requestId)).to.include({ decision: 'deny', reason: 'method_not_allowed', route: null });
  });

  it('picks the exact host, then the wildcard, then the host-less route; preserve_host sends the client Host, the default the upstream host', async () => {
    const exact = await get('/h/1', { host: 'api.example.test' });
    const wild = await get('/h/1', { host: 'shop.example.test:8080' });
    const other = await get('/h/1', { host: 'elsewhere.test' });
    expect((await stack.auditEvent(exact.requestId)).route).to.equal('host-exact');
    expect((await stack.auditEvent(wild.requestId)).route).to.equal('host-wild');
    expect((await stack.auditEvent(other.requestId)).route).to.equal('host-any');
    expect(stack.upstream.find(exact.requestId)?.headers.host).to.equal('api.example.test');
    expect(stack.upstream.find(wild.requestId)?.headers.host).to.equal(new URL(stack.upstream.url).host);
  });

  it('shares a pool by weight (3:1)', async () => {
    const served: string[] = [];
    for (let i = 0; i < 40; i++) served.push(servedBy(await get(`/pool/${i}`)) ?? '?');
    expect(served.filter((s) => s === 'a')).to.have.length(30);
    expect(served.filter((s) => s === 'b')).to.have.length(10);
  });

  it('a killed target: a POST sent to it fails (never retried); GETs are retried on the other, it is taken out, and back after the cool-down', async () => {
    const port = b.port;
    await b.close();
    let post: Sent | undefined;
    for (let i = 0; i < 4 && post?.status !== 502; i++) post = await get('/pool/order', { method: 'POST', body: 'pay once' });
    expect(post!.status).to.equal(502);
    expect(await stack.auditEvent(post!.requestId)).to.include({ reason: 'upstream_error', detail: 'ECONNREFUSED', upstream_target: `http://127.0.0.1:${port}`, upstream_tries: 1 });

    const gets: Sent[] = [];
    for (let i = 0; i < 12; i++) gets.push(await get(`/pool/item/${i}`));
    expect(gets.map((g) => g.status)).to.deep.equal(Array(12).fill(200));
    const retried = [];
    for (const g of gets) {
      const event = await stack.auditEvent(g.requestId);
      expect(event.upstream_target).to.equal(a.url);
      if (event.upstream_tries === 2) retried.push(g);
    }
    // One GET met b (its second failure in a row, after the POST): retried on a; then b is out.
    expect(retried).to.have.length(1);

    b = await RecordingUpstream.start(port);
    const back = await eventually(async () => {
      const sent = await get('/pool/again');
      return servedBy(sent) === 'b' ? sent : undefined;
    }, 10_000, 'b back in the pool after its 2 s cool-down');
    expect(back.status).to.equal(200);
  });

  it('every target down: 503 upstream_unavailable at once, not a timeout per request', async () => {
    await a.close();
    await b.close();
    const statuses: number[] = [];
    let unavailable: Sent | undefined;
    for (let i = 0; i < 6 && !unavailable; i++) {
      const sent = await get('/pool/x');
      statuses.push(sent.status);
      if (sent.status === 503) unavailable = sent;
    }
    expect(unavailable, `statuses ${statuses.join(',')}`).not.to.equal(undefined);
    expect(unavailable!.ms).to.be.below(200);
    expect(await stack.auditEvent(unavailable!.requestId)).to.include({ reason: 'upstream_unavailable', detail: 'all_targets_down', upstream_tries: 0 });
  });
});
