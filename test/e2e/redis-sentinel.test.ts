/**
 * Every process and the admin CLI reaching Redis through Sentinel (REDIS_SENTINELS,
 * REDIS_SENTINEL_NAME; no REDIS_URL): decisions, the audit queue and a revocation all work.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { TestSentinel } from '../helpers/redis-sentinel.js';

describe('Redis through Sentinel, through the real processes', function () {
  this.timeout(60_000);
  let stack: RunningStack;
  let sentinel: TestSentinel | undefined;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required, rate_limit: { by: consumer, minute: 3 } }
`,
      {},
      {
        redisEnv: async (redis) => {
          sentinel = await TestSentinel.start(redis.port);
          return { REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: 'mymaster' };
        },
      },
    );
  });

  after(async () => {
    await stack?.stop();
    await sentinel?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  it('decides, limits, audits and revokes with no REDIS_URL anywhere', async () => {
    expect(stack.env.REDIS_URL).to.equal(undefined);
    const token = stack.token({ sub: 'sentinel-user' });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(await stack.call('/users/1', { Authorization: `Bearer ${token}` }));
    expect(statuses.map((c) => c.status)).to.deep.equal([200, 200, 200, 429]);
    expect((await stack.auditEvent(statuses[0]!.requestId)).decision).to.equal('allow');

    const other = stack.token({ sub: 'sentinel-revoked' });
    const revoke = await stack.admin(['revoke', '--token', other, '--reason', 'sentinel test']);
    expect(revoke.code, revoke.stderr).to.equal(0);
    expect((await stack.call('/users/1', { Authorization: `Bearer ${other}` })).status).to.equal(401);
    // All of it is in the Redis the sentinel names, not in a Redis at the default REDIS_URL.
    const direct = new Redis(stack.redis.url);
    try {
      expect(await direct.keys(`${stack.env.REDIS_PREFIX}:revoked:jti:*`)).to.have.length(1);
      expect((await direct.keys(`${stack.env.REDIS_PREFIX}:rl:*`)).length).to.be.above(0);
    } finally {
      direct.disconnect();
    }
  });

  it('names a bad REDIS_SENTINELS in the CLI, without touching Redis', async () => {
    const bad = await runCli('cli/admin.js', ['bans', 'list'], { ...stack.env, REDIS_SENTINELS: 'nohost' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('REDIS_SENTINELS: must be host:port of each sentinel, comma-separated');
  });
});
