/**
 * Per-route authentication through the real gateway and sidecar: required scopes (403
 * insufficient_scope naming them), tokens read from a cookie or a query parameter (the parameter
 * never reaching the upstream, two of a kind refused), and optional routes (anonymous callers
 * marked X-Anonymous-Consumer, which a client can never send itself; a bad token still 401).
 */
import { expect } from 'chai';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('route authentication: scopes, token sources, optional (running stack)', function () {
  this.timeout(60_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: orders, paths: [/orders], upstream: "${upstream}", auth: { mode: required, required_scopes: [orders:read, orders:write] } }
  - { name: app, paths: [/app], upstream: "${upstream}", auth: { token: { cookie: gw_at, query: access_token } } }
  - { name: feed, paths: [/feed], upstream: "${upstream}", auth: optional }
`,
    );
  });
  after(async () => {
    await stack?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const bearer = (claims: Record<string, unknown> = {}) => ({ Authorization: `Bearer ${stack.token(claims)}` });

  it('admits a token carrying every required scope (string or list), refuses one missing any with 403 insufficient_scope naming them', async () => {
    expect((await stack.call('/orders/1', bearer({ scope: 'orders:read orders:write profile' }))).status).to.equal(200);
    expect((await stack.call('/orders/1', bearer({ scope: ['orders:write', 'orders:read'] }))).status).to.equal(200);
    const short = await stack.call('/orders/1', bearer({ scope: 'orders:read' }));
    expect(short.status).to.equal(403);
    expect(short.headers.get('www-authenticate')).to.equal('Bearer realm="gateway", error="insufficient_scope", scope="orders:read orders:write"');
    expect(await stack.auditEvent(short.requestId)).to.include({ reason: 'forbidden', detail: 'insufficient_scope' });
    expect((await stack.call('/orders/1', bearer())).status, 'no scope claim').to.equal(403);
  });

  it('reads the token from the cookie, then the query parameter, which the upstream never sees; Authorization comes first', async () => {
    const token = stack.token();
    const fromCookie = await stack.call('/app/home', { Cookie: `theme=dark; gw_at=${token}` });
    expect(fromCookie.status).to.equal(200);
    expect(stack.upstream.find(fromCookie.requestId)?.headers['x-consumer-id']).to.equal('e2e:alice');

    const fromQuery = await stack.call(`/app/home?a=1&access_token=${token}&b=2`);
    expect(fromQuery.status).to.equal(200);
    expect(stack.upstream.find(fromQuery.requestId)?.url).to.equal('/app/home?a=1&b=2');

    const headerWins = await stack.call(`/app/home?access_token=garbage`, { Authorization: `Bearer ${token}` });
    expect(headerWins.status).to.equal(200);
    expect(stack.upstream.find(headerWins.requestId)?.url, 'stripped even when the header carried the token').to.equal('/app/home');

    expect((await stack.call('/app/home')).status, 'no token anywhere').to.equal(401);
  });

  it('refuses two tokens of one kind (two cookies, two parameters) as multiple_tokens', async () => {
    const token = stack.token();
    for (const call of [stack.call('/app/x', { Cookie: `gw_at=${token}; gw_at=${stack.token({ sub: 'mallory' })}` }), stack.call(`/app/x?access_token=${token}&access_token=${token}`)]) {
      const answered = await call;
      expect(answered.status).to.equal(401);
      expect(await stack.auditEvent(answered.requestId)).to.include({ reason: 'token_invalid', detail: 'multiple_tokens' });
    }
  });

  it('marks an optional route\'s anonymous caller for the upstream, drops a forged mark, and still refuses a bad token', async () => {
    const anonymous = await stack.call('/feed', { 'X-Anonymous-Consumer': 'false', 'X-Consumer-ID': 'e2e:admin' });
    expect(anonymous.status).to.equal(200);
    const seen = stack.upstream.find(anonymous.requestId)!.headers;
    expect(seen['x-anonymous-consumer']).to.equal('true');
    expect(seen['x-consumer-id']).to.equal(undefined);

    const known = await stack.call('/feed', { ...bearer(), 'X-Anonymous-Consumer': 'true' });
    expect(known.status).to.equal(200);
    expect(stack.upstream.find(known.requestId)!.headers['x-anonymous-consumer'], 'a forged mark on a known caller').to.equal(undefined);

    expect((await stack.call('/feed', { Authorization: 'Bearer not.a.token' })).status).to.equal(401);
  });
});
