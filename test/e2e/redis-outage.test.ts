/**
 * Redis down or frozen, through the real processes: routes without authentication stay open by
 * default (let through unchecked, audited fail_open, without limit headers), a route may say
 * deny, authenticated routes answer 503 within 100 ms; a frozen Redis opens the breaker, after
 * which answers come at once, and decisions resume by themselves once Redis is back.
 */
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('Redis outages: on_redis_failure and the breaker (running stack)', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let bearer: Record<string, string>;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
tiers:
  anonymous: { minute: 1000 }
  free: { minute: 1000 }
routes:
  - { name: public, paths: [/public], upstream: "${upstream}", auth: none, rate_limit: { by: ip } }
  - { name: strict, paths: [/strict], upstream: "${upstream}", auth: none, rate_limit: { by: ip, on_redis_failure: deny } }
  - { name: private, paths: [/private], upstream: "${upstream}", auth: required }
sidecar: { redis_breaker: { failures: 3, open_ms: 1000 } }
`,
    );
    bearer = { Authorization: `Bearer ${stack.token({ sub: 'outage' })}` };
  });
  after(async () => {
    await stack?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('Redis killed: an auth: none route answers 200 unchecked (fail_open, no limit headers), a deny route and an authenticated one 503 within 100 ms; all recover', async () => {
    const before = await stack.call('/public/a');
    expect(before.headers.get('ratelimit-limit')).to.equal('1000');
    await stack.redis.stop();
    const open = await stack.call('/public/a');
    const strict = await stack.call('/strict/a');
    const closed = await stack.call('/private/a', bearer);
    expect(open.status).to.equal(200);
    expect(open.headers.get('ratelimit-limit')).to.equal(null);
    expect(strict.status).to.equal(503);
    expect(closed.status).to.equal(503);
    expect(closed.ms).to.be.below(100);
    await stack.redis.resume();
    const back = await eventually(async () => {
      const res = await stack.call('/private/a', bearer);
      return res.status === 200 ? res : undefined;
    }, 15_000, 'decisions after Redis came back');
    expect(back.status).to.equal(200);
    expect((await stack.call('/public/a')).headers.get('ratelimit-limit')).to.equal('1000');
    expect(await stack.auditEvent(open.requestId, 30_000)).to.include({ decision: 'allow', fail_open: true, detail: 'redis_unavailable' });
    expect(await stack.auditEvent(strict.requestId, 30_000)).to.include({ decision: 'deny', reason: 'auth_unavailable', detail: 'redis_unavailable' });
  });

  it('Redis frozen: 3 decisions time out, then the breaker answers at once; the probe after open_ms closes it once Redis answers', async () => {
    stack.redis.pause();
    const answers = [];
    try {
      for (let i = 0; i < 6; i++) answers.push(await stack.call('/private/b', bearer));
      answers.push(await stack.call('/public/b'));
    } finally {
      stack.redis.unpause();
    }
    expect(answers.map((a) => a.status)).to.deep.equal([503, 503, 503, 503, 503, 503, 200]);
    // The first three wait for the decision timeout (100 ms); the breaker then answers in milliseconds.
    for (const a of answers.slice(0, 3)) expect(a.ms).to.be.within(90, 400);
    for (const a of answers.slice(3)) expect(a.ms).to.be.below(50);
    expect(await stack.auditEvent(answers[4]!.requestId)).to.include({ reason: 'auth_unavailable', detail: 'redis_breaker_open' });
    expect(await stack.auditEvent(answers[6]!.requestId)).to.include({ decision: 'allow', fail_open: true, detail: 'redis_breaker_open' });
    const recovered = await eventually(async () => {
      const res = await stack.call('/private/b', bearer);
      return res.status === 200 ? res : undefined;
    }, 10_000, 'the breaker to close after the thaw');
    expect(recovered.status).to.equal(200);
  });
});
