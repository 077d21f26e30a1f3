/**
 * Tier limits, tier claims, claim characters and a frozen Redis, through the built gateway,
 * sidecar, worker and a private redis-server. Each test uses a consumer of its own.
 */
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

const TIER_MAX = 5;

describe('limits and claims end to end', function () {
  this.timeout(120_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
tiers:
  free: { hour: ${TIER_MAX} }
  anonymous: { hour: ${TIER_MAX} }
  gold: { hour: 1000 }
default_tiers: { authenticated: free, anonymous: anonymous }
routes:
  - { name: keyed, paths: [/keyed], upstream: "${upstream}", auth: optional, rate_limit: { by: "header:x-api-key" } }
  - { name: by-ip, paths: [/by-ip], upstream: "${upstream}", auth: optional, rate_limit: { by: ip } }
  - { name: closed, paths: [/closed], upstream: "${upstream}", rate_limit: { by: consumer } }
  - { name: open, paths: [/open], upstream: "${upstream}", rate_limit: { by: consumer, fail_open: true } }
gateway: { check_deadline_ms: 1000 }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  async function statuses(n: number, path: (i: number) => string, headers: (i: number) => Record<string, string>): Promise<number[]> {
    const seen: number[] = [];
    for (let i = 0; i < n; i++) seen.push((await stack.call(path(i), headers(i))).status);
    return seen;
  }

  const limited = (allowed: number, refused: number) => [...Array<number>(allowed).fill(200), ...Array<number>(refused).fill(429)];

  describe('tier windows', () => {
    it('count a consumer once whatever key header the route counts by', async () => {
      const token = stack.token({ sub: 'carol' });
      const seen = await statuses(10, () => '/keyed', (i) => ({ Authorization: `Bearer ${token}`, 'X-Api-Key': `key-${i}` }));
      expect(seen).to.deep.equal(limited(TIER_MAX, 10 - TIER_MAX));
    });

    it('count a consumer across routes counted by key header and by ip', async () => {
      const token = stack.token({ sub: 'dora' });
      const keyed = await statuses(3, () => '/keyed', (i) => ({ Authorization: `Bearer ${token}`, 'X-Api-Key': `key-${i}` }));
      const byIp = await statuses(3, () => '/by-ip', () => ({ Authorization: `Bearer ${token}` }));
      expect([...keyed, ...byIp]).to.deep.equal(limited(TIER_MAX, 1));
    });

    it('count anonymous callers by ip whatever key header they send', async () => {
      const seen = await statuses(10, () => '/keyed', (i) => ({ 'X-Api-Key': `anon-key-${i}` }));
      expect(seen).to.deep.equal(limited(TIER_MAX, 10 - TIER_MAX));
    });
  });

  describe('a tier claim naming no configured tier', () => {
    for (const tier of ['acc-unknown', 'constructor']) {
      it(`falls back to the default tier for tier "${tier}", with detail tier_unknown`, async () => {
        const token = stack.token({ sub: `tiered-${tier}`, tier });
        const first = await stack.call('/closed', { Authorization: `Bearer ${token}` });
        const rest = await statuses(7, () => '/closed', () => ({ Authorization: `Bearer ${token}` }));
        expect([first.status, ...rest]).to.deep.equal(limited(TIER_MAX, 8 - TIER_MAX));
        const event = await stack.auditEvent(first.requestId);
        expect(event).to.include({ decision: 'allow', detail: 'tier_unknown', status: 200 });
        expect(event.rate_limit?.limit).to.equal('tier:free:hour');
      });
    }

    it('keeps a configured tier', async () => {
      const token = stack.token({ sub: 'golden', tier: 'gold' });
      const seen = await statuses(8, () => '/closed', () => ({ Authorization: `Bearer ${token}` }));
      expect(seen).to.deep.equal(limited(8, 0));
    });
  });

  describe('a frozen Redis', () => {
    afterEach(() => {
      try {
        stack.redis.unpause();
      } catch {
        // already running
      }
    });

    it('fails closed or open within the decision timeout and never counts what it refused', async () => {
      const henry = { Authorization: `Bearer ${stack.token({ sub: 'henry' })}` };
      const ivy = { Authorization: `Bearer ${stack.token({ sub: 'ivy' })}` };
      stack.redis.pause();
      const refused = [];
      for (let i = 0; i < 6; i++) refused.push(await stack.call('/closed', henry));
      const open = await stack.call('/open', ivy);
      stack.redis.unpause();

      expect(refused.map((r) => r.status)).to.deep.equal(Array(6).fill(503));
      // The check deadline is 1000 ms here; the decision gives up on Redis after 100 ms (the default),
      // and after 5 of those in a row the breaker answers at once (sidecar.redis_breaker).
      expect(refused[5]!.ms).to.be.below(50);
      expect(open.status).to.equal(200);
      expect(open.ms).to.be.below(50);

      // Requests queue behind whatever the freeze left on the sidecar's connection; 503s count nothing.
      const first = await eventually(async () => {
        const res = await stack.call('/closed', henry);
        return res.status === 503 ? undefined : res.status;
      }, 10_000, 'a decision after the thaw');
      const rest = await statuses(TIER_MAX, () => '/closed', () => henry);
      expect([first, ...rest]).to.deep.equal(limited(TIER_MAX, 1));

      expect(await stack.auditEvent(open.requestId)).to.include({ decision: 'allow', fail_open: true, detail: 'redis_breaker_open' });
      expect(await stack.auditEvent(refused[0]!.requestId)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'redis_timeout' });
      expect(await stack.auditEvent(refused[5]!.requestId)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'redis_breaker_open' });
    });
  });

  it('answers 401 token_invalid (detail claim_invalid) to a jti holding a control character', async () => {
    const res = await stack.call('/closed', { Authorization: `Bearer ${stack.token({ sub: 'nul', jti: 'x\u0000y' })}` });
    expect(res.status).to.equal(401);
    const event = await stack.auditEvent(res.requestId);
    expect(event).to.include({ decision: 'deny', reason: 'token_invalid', detail: 'claim_invalid' });
  });
});
