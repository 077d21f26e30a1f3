import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { WINDOW_SECONDS, type LimitAlgorithm, type WindowName } from '../../common/config/schema.js';
import { connectFailFast, RedisTimeoutError, RedisUnavailableError } from '../../common/redis.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { ban, revokeConsumer, revokeJti, unban } from '../../common/security-state.js';
import { RedisDecider, type DecisionInput, type LimitWindow, type StoreVerdict } from '../../auth-sidecar/limiter/redis-decider.js';
import { eventually } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

const CONSUMER = 'local:alice';
const IP = '203.0.113.7';

function windowOf(keys: RedisKeys, window: WindowName, max: number, scope = 'tier:free', algorithm: LimitAlgorithm = 'fixed', burst = max, flags: Partial<Pick<LimitWindow, 'shadow' | 'countRefused'>> = {}): LimitWindow {
  return { name: `${scope}:${window}`, key: keys.rateCounter(scope, [`consumer:${CONSUMER}`], window), window, max, algorithm, burst, shadow: false, countRefused: false, ...flags };
}

function input(overrides: Partial<DecisionInput> = {}): DecisionInput {
  return { jti: 'jti-1', consumer: CONSUMER, iat: 1_700_000_000, clientIp: IP, count: true, cost: 1, windows: [], ...overrides };
}

/**
 * Waits until Redis' clock is at least `marginMs` away from the end of the current `window`,
 * so a test's requests all land in one fixed window.
 */
async function awayFromWindowEnd(redis: Redis, window: WindowName, marginMs: number): Promise<void> {
  const sizeMs = WINDOW_SECONDS[window] * 1000;
  await eventually(async () => {
    const [seconds, micros] = await redis.time();
    const nowMs = Number(seconds) * 1000 + Number(micros) / 1000;
    return sizeMs - (nowMs % sizeMs) > marginMs ? true : undefined;
  }, sizeMs + 5_000, `Redis clock to leave the end of a ${window} window`);
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  expect.fail('expected the promise to reject');
}

describe('decide.lua through RedisDecider', function () {
  this.timeout(30_000);
  let server: TestRedis;
  let redis: Redis;
  let keys: RedisKeys;
  let decider: RedisDecider;

  before(async () => {
    server = await TestRedis.start();
  });
  after(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    redis = new Redis(server.url);
    keys = new RedisKeys(`test-${randomUUID()}`);
    decider = new RedisDecider(redis, keys);
    // The decider refuses to run before the connection is ready.
    if (redis.status !== 'ready') await once(redis, 'ready');
  });
  afterEach(async () => {
    await redis.quit();
  });

  it('allows 3 requests against a limit of 3 per minute, then answers rate_limited', async () => {
    const minute = windowOf(keys, 'minute', 3);
    await awayFromWindowEnd(redis, 'minute', 2_000);
    const verdicts: StoreVerdict[] = [];
    for (let i = 0; i < 4; i++) verdicts.push(await decider.run(input({ windows: [minute] })));

    expect(verdicts.map((v) => v.status)).to.deep.equal(['allowed', 'allowed', 'allowed', 'rate_limited']);
    expect(verdicts.map((v) => v.limit?.remaining)).to.deep.equal([2, 1, 0, 0]);
    for (const verdict of verdicts) {
      expect(verdict.limit?.name).to.equal('tier:free:minute');
      expect(verdict.limit?.max).to.equal(3);
      expect(verdict.limit?.resetSeconds).to.be.within(1, 60);
    }
  });

  it('sliding, 5 per second: 20 requests 100 ms apart across a second boundary, never more than 5 in any 1-second span', async () => {
    const second = windowOf(keys, 'second', 5, 'tier:free', 'sliding');
    const allowedAt: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      while (performance.now() < started + i * 100) await new Promise((resolve) => setTimeout(resolve, 5));
      const at = performance.now();
      if ((await decider.run(input({ windows: [second] }))).status === 'allowed') allowedAt.push(at);
    }
    // Every span of 1 s (less 30 ms for the time between the local clock reading and Redis' TIME) holds at most 5.
    for (const start of allowedAt) expect(allowedAt.filter((t) => t >= start && t < start + 970).length).to.be.at.most(5);
    // And it does not starve: 2 s of steady traffic get about two windows' worth.
    expect(allowedAt.length).to.be.within(9, 11);
    // A fixed window at the same limit lets 10 through around an edge: the flaw sliding removes.
    const fixed = windowOf(keys, 'second', 5, 'tier:fixed');
    const edge = await redis.time();
    await new Promise((resolve) => setTimeout(resolve, 1000 - Number(edge[1]) / 1000 - 50)); // 50 ms before a second boundary
    const burst = await Promise.all(Array.from({ length: 12 }, () => decider.run(input({ windows: [fixed] }))));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await Promise.all(Array.from({ length: 12 }, () => decider.run(input({ windows: [fixed] }))));
    expect([...burst, ...after].filter((v) => v.status === 'allowed')).to.have.length(10);
  });

  it('gcra, 1 per second with a burst of 3: 3 at once, then 1 a second, Retry-After 1', async () => {
    const second = windowOf(keys, 'second', 1, 'tier:free', 'gcra', 3);
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await decider.run(input({ windows: [second] })));
    expect(first.map((v) => v.status)).to.deep.equal(['allowed', 'allowed', 'allowed', 'rate_limited', 'rate_limited']);
    expect(first.map((v) => v.limit?.remaining)).to.deep.equal([2, 1, 0, 0, 0]);
    expect(first[3]!.limit?.resetSeconds).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    const next = [await decider.run(input({ windows: [second] })), await decider.run(input({ windows: [second] }))];
    expect(next.map((v) => v.status)).to.deep.equal(['allowed', 'rate_limited']);
  });

  it('counts nothing for a check-only request under sliding and gcra either, and honours several windows of different algorithms', async () => {
    const sliding = windowOf(keys, 'second', 2, 'tier:s', 'sliding');
    const gcra = windowOf(keys, 'minute', 3, 'tier:g', 'gcra', 3);
    for (let i = 0; i < 3; i++) expect((await decider.run(input({ count: false, windows: [sliding, gcra] }))).status).to.equal('allowed');
    expect(await redis.keys(`${keys.prefix}:*`)).to.deep.equal([]);
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await decider.run(input({ windows: [sliding, gcra] })));
    // Two pass the sliding second; the third is refused by it, before gcra's third is spent.
    expect(verdicts.map((v) => v.status)).to.deep.equal(['allowed', 'allowed', 'rate_limited', 'rate_limited']);
    expect(verdicts[2]!.limit?.name).to.equal('tier:s:second');
  });

  for (const algorithm of ['fixed', 'sliding', 'gcra'] as const) {
    it(`${algorithm}: a request of cost 4 counts as 4 against 10 an hour, refused when 4 more would not fit`, async () => {
      const hour = windowOf(keys, 'hour', 10, 'tier:free', algorithm);
      await awayFromWindowEnd(redis, 'hour', 5_000);
      const verdicts = [];
      for (let i = 0; i < 3; i++) verdicts.push(await decider.run(input({ cost: 4, windows: [hour] })));
      expect(verdicts.map((v) => [v.status, v.remaining[0]])).to.deep.equal([['allowed', 6], ['allowed', 2], ['rate_limited', 0]]);
      // Two still fit for a request of cost 1.
      expect((await decider.run(input({ windows: [hour] }))).remaining).to.deep.equal([1]);
    });

    it(`${algorithm}: a shadow window lets through what it would refuse, naming itself, and is not counted once full`, async () => {
      const shadow = windowOf(keys, 'hour', 2, 'route:beta', algorithm, 2, { shadow: true });
      const enforced = windowOf(keys, 'hour', 100, 'tier:free', algorithm);
      await awayFromWindowEnd(redis, 'hour', 5_000);
      const verdicts = [];
      for (let i = 0; i < 4; i++) verdicts.push(await decider.run(input({ windows: [enforced, shadow] })));
      expect(verdicts.map((v) => v.status)).to.deep.equal(['allowed', 'allowed', 'allowed', 'allowed']);
      expect(verdicts.map((v) => v.shadow?.name)).to.deep.equal([undefined, undefined, 'route:beta:hour', 'route:beta:hour']);
      expect(verdicts[3]!.shadow).to.include({ window: 'hour', max: 2, remaining: 0 });
      // The client's limit (the headers') is the enforced one, counted every time.
      expect(verdicts.map((v) => v.limit?.name)).to.deep.equal(Array(4).fill('tier:free:hour'));
      expect(verdicts.map((v) => v.remaining)).to.deep.equal([[99, 1], [98, 0], [97, 0], [96, 0]]);
    });
  }

  it('count_refused: a refused request still counts (sliding keeps the newest, gcra restarts the wait); without it, it does not', async () => {
    const pairs = (['sliding', 'gcra'] as const).map((algorithm) => ({
      algorithm,
      counted: windowOf(keys, 'second', algorithm === 'gcra' ? 1 : 2, `tier:${algorithm}-counted`, algorithm, algorithm === 'gcra' ? 1 : 2, { countRefused: true }),
      plain: windowOf(keys, 'second', algorithm === 'gcra' ? 1 : 2, `tier:${algorithm}-plain`, algorithm),
    }));
    const started = performance.now();
    const at = async (ms: number): Promise<void> => {
      while (performance.now() < started + ms) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const run = (window: LimitWindow) => decider.run(input({ windows: [window] })).then((v) => v.status);
    // t=0: the limit is spent (2 sliding, 1 gcra); t=500: one more, refused.
    for (const { counted, plain } of pairs) {
      for (let i = 0; i < counted.max; i++) expect([await run(counted), await run(plain)]).to.deep.equal(['allowed', 'allowed']);
    }
    await at(500);
    for (const { counted, plain } of pairs) expect([await run(counted), await run(plain)]).to.deep.equal(['rate_limited', 'rate_limited']);
    // t=1100: the requests of t=0 have left; the refusal of t=500 still holds a place where it counted.
    await at(1_100);
    const sliding = pairs[0]!;
    expect([await run(sliding.counted), await run(sliding.counted)]).to.deep.equal(['allowed', 'rate_limited']);
    expect([await run(sliding.plain), await run(sliding.plain)]).to.deep.equal(['allowed', 'allowed']);
    const gcra = pairs[1]!;
    expect([await run(gcra.counted), await run(gcra.plain)]).to.deep.equal(['rate_limited', 'allowed']);
  });

  it('never spends quota on a check-only request', async () => {
    const minute = windowOf(keys, 'minute', 3);
    await awayFromWindowEnd(redis, 'minute', 2_000);
    for (let i = 0; i < 5; i++) {
      const verdict = await decider.run(input({ count: false, windows: [minute] }));
      expect(verdict.status).to.equal('allowed');
      expect(verdict.limit?.remaining).to.equal(3);
    }
    expect(await redis.keys(`${keys.prefix}:*`)).to.deep.equal([]);
    expect((await decider.run(input({ windows: [minute] }))).limit?.remaining).to.equal(2);
  });

  it('still refuses a check-only request once the quota is spent', async () => {
    const minute = windowOf(keys, 'minute', 1);
    await awayFromWindowEnd(redis, 'minute', 2_000);
    expect((await decider.run(input({ windows: [minute] }))).status).to.equal('allowed');
    expect((await decider.run(input({ count: false, windows: [minute] }))).status).to.equal('rate_limited');
  });

  it('reports the tighter of two windows', async () => {
    const windows = [windowOf(keys, 'minute', 100), windowOf(keys, 'second', 2)];
    await awayFromWindowEnd(redis, 'minute', 2_000);
    await awayFromWindowEnd(redis, 'second', 600);
    const first = await decider.run(input({ windows }));
    const second = await decider.run(input({ windows }));
    const third = await decider.run(input({ windows }));

    const second2 = { name: 'tier:free:second', window: 'second', max: 2, resetSeconds: 1 };
    expect(first).to.deep.equal({ status: 'allowed', limit: { ...second2, remaining: 1 }, shadow: undefined, remaining: [99, 1] });
    expect(second).to.deep.equal({ status: 'allowed', limit: { ...second2, remaining: 0 }, shadow: undefined, remaining: [98, 0] });
    expect(third).to.deep.equal({ status: 'rate_limited', limit: { ...second2, remaining: 0 }, shadow: undefined, remaining: [98, 0] });
  });

  it('reports the window that blocks longest when several are exhausted', async () => {
    const windows = [windowOf(keys, 'second', 1), windowOf(keys, 'hour', 1, 'route:users')];
    await awayFromWindowEnd(redis, 'hour', 5_000);
    await awayFromWindowEnd(redis, 'second', 600);
    expect((await decider.run(input({ windows }))).status).to.equal('allowed');
    const blocked = await decider.run(input({ windows }));
    expect(blocked.status).to.equal('rate_limited');
    expect(blocked.limit?.name).to.equal('route:users:hour');
    expect(blocked.limit?.resetSeconds).to.be.within(5, 3600);
  });

  it('answers token_revoked for a revoked jti, without counting', async () => {
    const minute = windowOf(keys, 'minute', 3);
    await redis.set(keys.revokedJti('jti-1'), '1');
    expect(await decider.run(input({ windows: [minute] }))).to.deep.equal({ status: 'token_revoked', limit: undefined, shadow: undefined, remaining: [] });
    expect(await redis.keys(`${keys.prefix}:rl:*`)).to.deep.equal([]);
    expect((await decider.run(input({ jti: 'jti-2', windows: [minute] }))).status).to.equal('allowed');
  });

  it('revokes the tokens of a consumer issued up to the revocation time, not later ones', async () => {
    const revokedAt = 1_700_000_000;
    await redis.set(keys.revokedConsumer(CONSUMER), String(revokedAt));
    expect(await decider.run(input({ iat: revokedAt - 1 }))).to.deep.equal({ status: 'consumer_revoked', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ iat: revokedAt }))).to.deep.equal({ status: 'consumer_revoked', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ iat: undefined }))).to.deep.equal({ status: 'consumer_revoked', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ iat: revokedAt + 1 }))).to.deep.equal({ status: 'allowed', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ consumer: 'local:bob', iat: revokedAt }))).to.deep.equal({ status: 'allowed', limit: undefined, shadow: undefined, remaining: [] });
  });

  it('answers ip_banned for a banned ip, with or without a consumer', async () => {
    await redis.set(keys.banIp(IP), '{}');
    expect(await decider.run(input())).to.deep.equal({ status: 'ip_banned', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ jti: undefined, consumer: undefined, iat: undefined }))).to.deep.equal({ status: 'ip_banned', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ clientIp: '203.0.113.8' }))).to.deep.equal({ status: 'allowed', limit: undefined, shadow: undefined, remaining: [] });
  });

  it('answers consumer_banned for a banned consumer', async () => {
    await redis.set(keys.banConsumer(CONSUMER), '{}');
    expect(await decider.run(input())).to.deep.equal({ status: 'consumer_banned', limit: undefined, shadow: undefined, remaining: [] });
    expect(await decider.run(input({ consumer: 'local:bob' }))).to.deep.equal({ status: 'allowed', limit: undefined, shadow: undefined, remaining: [] });
  });

  it('allows exactly the limit out of 200 concurrent requests', async () => {
    const hour = windowOf(keys, 'hour', 50);
    await awayFromWindowEnd(redis, 'hour', 5_000);
    const verdicts = await Promise.all(Array.from({ length: 200 }, () => decider.run(input({ windows: [hour] }))));
    const allowed = verdicts.filter((v) => v.status === 'allowed');
    expect(allowed.length).to.equal(50);
    expect(verdicts.filter((v) => v.status === 'rate_limited').length).to.equal(150);
    expect(allowed.map((v) => v.limit?.remaining).sort((a = 0, b = 0) => a - b)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
  });

  it('decides the requests of one tick in one EVALSHA, each with its own answer, in order', async () => {
    const minute = windowOf(keys, 'minute', 2);
    await awayFromWindowEnd(redis, 'minute', 5_000);
    await revokeJti(redis, keys, 'jti-revoked', Date.now() / 1000 + 120);
    await ban(redis, keys, { ip: '198.51.100.9' }, 'test', 60);
    const scriptCalls = async (): Promise<number> => {
      const stats = await redis.info('commandstats');
      return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const before = await scriptCalls();
    const verdicts = await Promise.all([
      decider.run(input({ windows: [minute] })),
      decider.run(input({ jti: 'jti-revoked', windows: [minute] })),
      decider.run(input({ windows: [minute] })),
      decider.run(input({ clientIp: '198.51.100.9', windows: [minute] })),
      decider.run(input({ windows: [minute] })),
      decider.run(input({ count: false, windows: [minute] })),
    ]);
    expect(verdicts.map((v) => [v.status, v.limit?.remaining])).to.deep.equal([
      ['allowed', 1],
      ['token_revoked', undefined],
      ['allowed', 0],
      ['ip_banned', undefined],
      ['rate_limited', 0],
      ['rate_limited', 0],
    ]);
    // The INFO call itself is not a script call: one EVALSHA decided all six.
    expect((await scriptCalls()) - before).to.equal(1);
  });

  it('fails only the decision whose keys hold something unexpected, not the rest of its batch', async () => {
    await redis.set(keys.revokedConsumer('local:mallory'), 'not-a-time');
    const hour = windowOf(keys, 'hour', 10);
    await awayFromWindowEnd(redis, 'hour', 5_000);
    const [seconds] = await redis.time();
    await redis.hset(`${hour.key}:${Math.floor(Number(seconds) / 3600)}`, 'f', 'v'); // WRONGTYPE for GET
    const [good, badRevocation, badCounter, alsoGood] = await Promise.allSettled([
      decider.run(input()),
      decider.run(input({ consumer: 'local:mallory' })),
      decider.run(input({ windows: [hour] })),
      decider.run(input({ consumer: 'local:bob' })),
    ]);
    expect(good).to.deep.equal({ status: 'fulfilled', value: { status: 'allowed', limit: undefined, shadow: undefined, remaining: [] } });
    expect(alsoGood).to.deep.equal({ status: 'fulfilled', value: { status: 'allowed', limit: undefined, shadow: undefined, remaining: [] } });
    for (const bad of [badRevocation, badCounter]) {
      expect(bad.status).to.equal('rejected');
      expect((bad as PromiseRejectedResult).reason.message).to.match(/could not decide/);
    }
  });

  it('keeps working after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const hour = windowOf(keys, 'hour', 10);
    await awayFromWindowEnd(redis, 'hour', 5_000);
    expect((await decider.run(input({ windows: [hour] }))).limit?.remaining).to.equal(9);
    expect(await redis.script('FLUSH')).to.equal('OK');
    expect((await decider.run(input({ windows: [hour] }))).limit?.remaining).to.equal(8);
  });

  it('counts nothing for a decision that Redis runs after its give-up time (Redis frozen meanwhile)', async () => {
    const hour = windowOf(keys, 'hour', 10);
    await awayFromWindowEnd(redis, 'hour', 5_000);
    // Also waits for the clock offset: the decider's TIME went out before this EVALSHA.
    expect((await decider.run(input({ windows: [hour] }))).limit?.remaining).to.equal(9);
    server.pause();
    try {
      expect(await rejectionOf(decider.run(input({ windows: [hour], giveUpAt: performance.now() + 50 })))).to.be.instanceOf(RedisTimeoutError);
    } finally {
      server.unpause();
    }
    expect((await decider.run(input({ windows: [hour] }))).limit?.remaining).to.equal(8);
  });

  it('does not send a decision whose give-up time has passed', async () => {
    const hour = windowOf(keys, 'hour', 10);
    await awayFromWindowEnd(redis, 'hour', 5_000);
    expect(await rejectionOf(decider.run(input({ windows: [hour], giveUpAt: performance.now() - 1 })))).to.be.instanceOf(RedisTimeoutError);
    expect((await decider.run(input({ windows: [hour] }))).limit?.remaining).to.equal(9);
  });

  describe('security state writes', () => {
    it('enforces a jti revoked by revokeJti until the token expires', async () => {
      await revokeJti(redis, keys, 'jti-1', Date.now() / 1000 + 120);
      expect((await decider.run(input())).status).to.equal('token_revoked');
      expect(await redis.ttl(keys.revokedJti('jti-1'))).to.be.within(119, 120);
    });

    it('enforces a consumer revocation by revokeConsumer on older tokens only', async () => {
      const now = Math.floor(Date.now() / 1000);
      await revokeConsumer(redis, keys, CONSUMER);
      expect((await decider.run(input({ iat: now - 60 }))).status).to.equal('consumer_revoked');
      expect((await decider.run(input({ iat: now + 60 }))).status).to.equal('allowed');
    });

    it('enforces an ip ban written by ban() and lifts it with unban()', async () => {
      await ban(redis, keys, { ip: IP }, 'credential stuffing');
      expect((await decider.run(input())).status).to.equal('ip_banned');
      expect(await unban(redis, keys, { ip: IP })).to.equal(true);
      expect((await decider.run(input())).status).to.equal('allowed');
      expect(await unban(redis, keys, { ip: IP })).to.equal(false);
    });

    it('enforces a consumer ban written by ban() with its ttl and lifts it with unban()', async () => {
      await ban(redis, keys, { consumer: CONSUMER }, 'abuse', 600);
      expect((await decider.run(input())).status).to.equal('consumer_banned');
      expect(await redis.ttl(keys.banConsumer(CONSUMER))).to.be.within(599, 600);
      expect(JSON.parse((await redis.get(keys.banConsumer(CONSUMER))) ?? '{}').reason).to.equal('abuse');
      expect(await unban(redis, keys, { consumer: CONSUMER })).to.equal(true);
      expect((await decider.run(input())).status).to.equal('allowed');
    });
  });
});

describe('RedisDecider when Redis goes away', function () {
  this.timeout(30_000);
  let server: TestRedis;
  let redis: Redis;

  before(async () => {
    server = await TestRedis.start();
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('rejects while Redis is down (fail closed) and decides again once it is back', async () => {
    redis = connectFailFast(server.url);
    const keys = new RedisKeys(`test-${randomUUID()}`);
    const decider = new RedisDecider(redis, keys);
    if (redis.status !== 'ready') await once(redis, 'ready');
    expect((await decider.run(input())).status).to.equal('allowed');

    await server.stop();
    await eventually(() => (redis.status === 'ready' ? undefined : true), 5_000, 'the client to notice Redis is gone');
    const startedAt = Date.now();
    // run() checks the status synchronously, in the same tick as this read.
    const status = redis.status;
    const error = await rejectionOf(decider.run(input()));
    expect(Date.now() - startedAt).to.be.below(100);
    expect(error).to.be.instanceOf(RedisUnavailableError);
    expect(error.message).to.equal(`redis is not connected (${status})`);

    await server.resume();
    const verdict = await eventually(() => decider.run(input()), 10_000, 'a decision after Redis is back');
    expect(verdict).to.deep.equal({ status: 'allowed', limit: undefined, shadow: undefined, remaining: [] });
  });
});
