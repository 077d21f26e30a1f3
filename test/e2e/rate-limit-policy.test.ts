/**
 * The rate-limit policy model through the built processes, sent as a client would: what a
 * route counts by (credential, route, consumer+ip, ip behind trusted proxies and a spoofed
 * X-Forwarded-For from an untrusted peer), cost, consumer overrides from the config and from
 * `admin limits`, shadow limits, the header styles, a custom refusal, and the audit naming the
 * limit. Each test uses consumers of its own; every limit is per hour, so nothing resets mid-test.
 */
import { expect } from 'chai';
import { callFrom } from '../helpers/call-from.js';
import { eventually } from '../helpers/net.js';
import type { SecurityEvent } from '../../common/security-event.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('rate-limit policy end to end', function () {
  this.timeout(120_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
tiers:
  free: { hour: 3 }
  roomy: { hour: 1000 }
default_tiers: { authenticated: free, anonymous: roomy }
limit_overrides:
  "e2e:partner": { scale: 2 }
  "e2e:fixed-own": { hour: 4, algorithm: sliding }
gateway: { trusted_proxies: "127.0.0.1" }
routes:
  - { name: per-token, paths: [/per-token], upstream: "${upstream}", rate_limit: { by: credential, hour: 2 } }
  - { name: shared, paths: [/shared], upstream: "${upstream}", rate_limit: { by: route, hour: 3 } }
  - { name: per-place, paths: [/per-place], upstream: "${upstream}", rate_limit: { by: consumer+ip, hour: 2 } }
  - { name: per-ip, paths: [/per-ip], upstream: "${upstream}", auth: none, rate_limit: { by: ip, hour: 2 } }
  - { name: heavy, paths: [/heavy], upstream: "${upstream}", rate_limit: { by: consumer, hour: 10, cost: 5 } }
  - { name: tiered, paths: [/tiered], upstream: "${upstream}", rate_limit: { by: consumer } }
  - { name: trial, paths: [/trial], upstream: "${upstream}", rate_limit: { by: consumer, hour: 2, shadow: true } }
  - { name: kong, paths: [/kong], upstream: "${upstream}", auth: none, rate_limit: { by: ip, minute: 50, hour: 2, headers: kong } }
  - { name: quiet, paths: [/quiet], upstream: "${upstream}", auth: none, rate_limit: { by: header:x-quiet, hour: 1, headers: none, status: 420, message: "enhance your calm" } }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  async function statuses(n: number, path: string, headers: Record<string, string>): Promise<number[]> {
    const seen: number[] = [];
    for (let i = 0; i < n; i++) seen.push((await stack.call(path, headers)).status);
    return seen;
  }

  it('by credential: each token of one consumer has its own count', async () => {
    const [first, second] = [stack.token({ sub: 'cred', tier: 'roomy' }), stack.token({ sub: 'cred', tier: 'roomy' })];
    expect(await statuses(3, '/per-token', bearer(first))).to.deep.equal([200, 200, 429]);
    expect(await statuses(3, '/per-token', bearer(second))).to.deep.equal([200, 200, 429]);
  });

  it('by route: every caller of the route shares one count', async () => {
    const seen = [];
    for (const sub of ['r1', 'r2', 'r3', 'r4']) seen.push((await stack.call('/shared', bearer(stack.token({ sub, tier: 'roomy' })))).status);
    expect(seen).to.deep.equal([200, 200, 200, 429]);
  });

  it('by consumer+ip: one consumer from two client ips (behind the trusted proxy) has two counts', async () => {
    const token = stack.token({ sub: 'roamer', tier: 'roomy' });
    expect(await statuses(3, '/per-place', { ...bearer(token), 'X-Forwarded-For': '198.51.100.1' })).to.deep.equal([200, 200, 429]);
    expect(await statuses(3, '/per-place', { ...bearer(token), 'X-Forwarded-For': '198.51.100.2' })).to.deep.equal([200, 200, 429]);
  });

  it('by ip: X-Forwarded-For counts from the trusted proxy, and a spoofed one from an untrusted peer is ignored', async () => {
    const url = `${stack.gatewayUrl}/per-ip`;
    // 127.0.0.5 is not a trusted proxy: whatever it forges, it is counted as itself.
    const spoofed = [];
    for (let i = 0; i < 4; i++) spoofed.push((await callFrom(url, '127.0.0.5', undefined, { 'X-Forwarded-For': `203.0.113.${i}` })).status);
    expect(spoofed).to.deep.equal([200, 200, 429, 429]);
    // Through the trusted proxy, the forwarded address is the client: a fresh one has its own count.
    expect((await callFrom(url, '127.0.0.1', undefined, { 'X-Forwarded-For': '203.0.113.50' })).status).to.equal(200);
  });

  it('cost: a request of cost 5 spends 5 of the hour\'s 10, and of its tier too', async () => {
    const token = stack.token({ sub: 'heavy', tier: 'roomy' });
    const calls = [await stack.call('/heavy', bearer(token)), await stack.call('/heavy', bearer(token)), await stack.call('/heavy', bearer(token))];
    expect(calls.map((c) => c.status)).to.deep.equal([200, 200, 429]);
    expect(calls.map((c) => c.headers.get('ratelimit-remaining'))).to.deep.equal(['5', '0', '0']);
    const tiered = await stack.call('/tiered', bearer(token));
    expect(tiered.headers.get('ratelimit-remaining')).to.equal(String(1000 - 10 - 1));
  });

  it('overrides from the config: a scaled tier and windows of its own, others keep the tier', async () => {
    expect(await statuses(7, '/tiered', bearer(stack.token({ sub: 'partner' })))).to.deep.equal([200, 200, 200, 200, 200, 200, 429]);
    expect(await statuses(5, '/tiered', bearer(stack.token({ sub: 'fixed-own' })))).to.deep.equal([200, 200, 200, 200, 429]);
    const other = await stack.call('/tiered', bearer(stack.token({ sub: 'someone-else' })));
    expect(other.headers.get('ratelimit-limit')).to.equal('3');
    const partner = await stack.call('/tiered', bearer(stack.token({ sub: 'partner' })));
    expect((await stack.auditEvent(partner.requestId)).rate_limit).to.include({ limit: 'override:free:hour', window: 'hour', max: 6, remaining: 0 });
  });

  it('admin limits set raises a consumer\'s limit within 2 s, audited; clear returns it to its tier; a bad one is refused', async () => {
    const headers = bearer(stack.token({ sub: 'grower' }));
    expect(await statuses(4, '/tiered', headers)).to.deep.equal([200, 200, 200, 429]);
    const set = await stack.admin(['limits', 'set', '--consumer', 'e2e:grower', '--hour', '5', '--reason', 'pilot customer']);
    expect(set.code, set.stderr).to.equal(0);
    const setAt = performance.now();
    await eventually(async () => ((await stack.call('/tiered', headers)).status === 200 ? true : undefined), 5_000, 'the override to apply');
    expect(performance.now() - setAt).to.be.below(2_000);
    const listed = await stack.admin(['limits', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).to.deep.include({ consumer: 'e2e:grower', source: 'admin', override: { hour: 5 } });
    const cleared = await stack.admin(['limits', 'clear', '--consumer', 'e2e:grower', '--reason', 'pilot over']);
    expect(cleared.code, cleared.stderr).to.equal(0);
    await eventually(async () => ((await stack.call('/tiered', headers)).status === 429 ? true : undefined), 5_000, 'the tier to apply again');
    const events = await eventually(async () => {
      const res = await fetch(`${stack.auditUrl}/v1/security-events?${new URLSearchParams({ subject: 'e2e:grower' })}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
      const { events: stored } = (await res.json()) as { events: SecurityEvent[] };
      return stored.length >= 2 ? stored : undefined;
    }, 15_000, 'the two security events of e2e:grower');
    expect(events.map((e) => [e.kind, e.subject_kind, e.reason])).to.deep.equal([
      ['limit_clear', 'consumer', 'pilot over'],
      ['limit_set', 'consumer', 'pilot customer [hour=5]'],
    ]);
    const bad = await stack.admin(['limits', 'set', '--consumer', 'e2e:grower', '--scale', '2', '--hour', '5', '--reason', 'x']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('give scale, or windows');
  });

  it('shadow: lets through what it would refuse, audited as shadow naming the limit, with no headers of it', async () => {
    const headers = bearer(stack.token({ sub: 'trial', tier: 'roomy' }));
    const calls = [];
    for (let i = 0; i < 4; i++) calls.push(await stack.call('/trial', headers));
    expect(calls.map((c) => c.status)).to.deep.equal([200, 200, 200, 200]);
    const events = await Promise.all(calls.map((c) => stack.auditEvent(c.requestId)));
    expect(events.map((e) => e.shadow)).to.deep.equal([false, false, true, true]);
    expect(events[3]!.rate_limit).to.include({ limit: 'route:trial:hour', window: 'hour', max: 2, remaining: 0 });
    expect(events[3]!.decision).to.equal('allow');
    // The client sees its enforced limit (the tier), not the shadow one.
    expect(calls[3]!.headers.get('ratelimit-limit')).to.equal('1000');
  });

  it('headers kong: X-RateLimit-Limit/-Remaining-<Window> for every window, no IETF fields', async () => {
    const url = `${stack.gatewayUrl}/kong`;
    const res = await fetch(url, { headers: { 'X-Forwarded-For': '198.51.100.77' } });
    expect(res.status).to.equal(200);
    expect(Object.fromEntries([...res.headers].filter(([name]) => name.includes('ratelimit')))).to.deep.equal({
      'x-ratelimit-limit-minute': '50',
      'x-ratelimit-remaining-minute': '49',
      'x-ratelimit-limit-hour': '2',
      'x-ratelimit-remaining-hour': '1',
    });
  });

  it('headers none, custom status and message: 420 "enhance your calm" with Retry-After only, audited with its status', async () => {
    const headers = { 'X-Quiet': 'q1' };
    const ok = await stack.call('/quiet', headers);
    expect([...ok.headers.keys()].filter((name) => name.includes('ratelimit'))).to.deep.equal([]);
    const res = await fetch(`${stack.gatewayUrl}/quiet`, { headers: { ...headers, 'X-Request-Id': 'quiet-refused-1' } });
    expect(res.status).to.equal(420);
    expect(await res.json()).to.include({ error: 'enhance your calm', reason: 'rate_limited' });
    expect(Number(res.headers.get('retry-after'))).to.be.within(1, 3600);
    expect([...res.headers.keys()].filter((name) => name.includes('ratelimit'))).to.deep.equal([]);
    const event = await stack.auditEvent('quiet-refused-1');
    expect(event).to.include({ status: 420, decision: 'deny', reason: 'rate_limited' });
    expect(event.rate_limit).to.include({ limit: 'route:quiet:hour', window: 'hour', max: 1, remaining: 0 });
  });
});
