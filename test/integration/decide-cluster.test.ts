/**
 * RedisDecider on a local 3-master Redis Cluster: key slots as Redis computes them, decisions
 * of many consumers in one tick batched per slot and exact, a decision across two slots never
 * over either limit, and the ban copy gating every decision until it is synced.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import type { WindowName } from '../../common/config/schema.js';
import { RedisUnavailableError } from '../../common/redis.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { keySlot } from '../../common/redis-slot.js';
import { ban, revokeJti } from '../../common/security-state.js';
import { BanMirror } from '../../auth-sidecar/limiter/ban-mirror.js';
import { RedisDecider, type DecisionInput, type LimitWindow } from '../../auth-sidecar/limiter/redis-decider.js';
import { silentLogger } from '../../common/logger.js';
import { eventually } from '../helpers/net.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';

describe('RedisDecider on a Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: TestRedisCluster;
  let redis: Cluster;
  let keys: RedisKeys;
  let mirror: BanMirror;
  let decider: RedisDecider;

  before(async () => {
    cluster = await TestRedisCluster.start(3);
  });
  after(async () => {
    await cluster?.stop();
  });
  beforeEach(async () => {
    redis = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }], { enableOfflineQueue: false });
    await new Promise((resolve) => redis.once('ready', resolve));
    keys = new RedisKeys(`dc-${randomUUID().slice(0, 8)}`, 'cluster');
    mirror = new BanMirror(redis, keys, silentLogger());
    decider = new RedisDecider(redis, keys, mirror);
  });
  afterEach(() => {
    mirror.stop();
    redis.disconnect();
  });

  const started = async (): Promise<void> => {
    mirror.start();
    await eventually(() => (mirror.isSynced ? true : undefined), 10_000, 'the ban copy to sync');
  };
  const consumerWindow = (consumer: string, window: WindowName, max: number): LimitWindow => ({ name: `tier:t:${window}`, key: keys.rateCounter('tier:t', [`consumer:${consumer}`], window), window, max, algorithm: 'fixed', burst: max, shadow: false, countRefused: false });
  const ipWindow = (ip: string, max: number): LimitWindow => ({ name: 'route:r:hour', key: keys.rateCounter('route:r', [`ip:${ip}`], 'hour'), window: 'hour', max, algorithm: 'fixed', burst: max, shadow: false, countRefused: false });
  const input = (consumer: string | undefined, windows: LimitWindow[], overrides: Partial<DecisionInput> = {}): DecisionInput => ({
    jti: consumer ? `jti-${consumer}` : undefined,
    consumer,
    iat: 1_700_000_000,
    clientIp: '198.51.100.1',
    cost: 1,
    count: true,
    windows,
    ...overrides,
  });

  it('computes every key slot as Redis does', async () => {
    const node = new Redis({ port: cluster.ports[0]! });
    try {
      const samples = ['foo', '123456789', '{user1000}.following', 'a{}b', '{}{a}', 'x{', 'é{ü}', '', keys.banIp('2001:db8::1'), keys.revokedJti('j{1}'), keys.queuePrefix + ':audit:wait', keys.rateCounter('route:r', ['header:x-key:v{a}'], 'day')];
      for (const key of samples) expect(keySlot(key), key).to.equal(await node.cluster('KEYSLOT', key));
    } finally {
      node.disconnect();
    }
  });

  it('refuses to decide until the ban copy is synced', async () => {
    const err = await decider.run(input('alice', [])).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(RedisUnavailableError);
    expect(err?.message).to.include('ban copy not synced');
    await started();
    expect((await decider.run(input('alice', []))).status).to.equal('allowed');
  });

  it('decides 200 requests of 10 consumers in one tick exactly: 5 each against a limit of 5', async () => {
    await started();
    const consumers = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const verdicts = await Promise.all(consumers.flatMap((c) => Array.from({ length: 20 }, () => decider.run(input(c, [consumerWindow(c, 'hour', 5)])).then((v) => [c, v.status] as const))));
    for (const c of consumers) expect(verdicts.filter(([who, status]) => who === c && status === 'allowed'), c).to.have.length(5);
    expect(new Set(consumers.map((c) => keySlot(keys.banConsumer(c)))).size, 'spread over slots').to.be.above(5);
  });

  it('never lets a decision in two slots pass either limit, and names the window that refused', async () => {
    await started();
    const ip = '198.51.100.2';
    const consumers = ['p0', 'p1', 'p2'];
    const verdicts = await Promise.all(consumers.flatMap((c) => Array.from({ length: 4 }, () => decider.run(input(c, [consumerWindow(c, 'hour', 2), ipWindow(ip, 5)], { clientIp: ip })).then((v) => [c, v] as const))));
    const allowed = verdicts.filter(([, v]) => v.status === 'allowed');
    expect(allowed.length).to.be.at.most(5);
    for (const c of consumers) expect(allowed.filter(([who]) => who === c).length, c).to.be.at.most(2);
    for (const [, v] of verdicts.filter(([, v]) => v.status === 'rate_limited')) expect(['tier:t:hour', 'route:r:hour']).to.include(v.limit?.name);
  });

  it('batches a node\'s slots into one call, and decides exactly on through a slot moved to another node (stale slot map)', async () => {
    await started();
    const nodeOf = (consumer: string) => redis.slots[keySlot(keys.banConsumer(consumer))]![0]!;
    const candidates = Array.from({ length: 200 }, (_, i) => `m${i}`);
    const home = nodeOf(candidates[0]!);
    const local = candidates.filter((c) => nodeOf(c) === home).slice(0, 6);
    const [moved, ...others] = local;
    const decideAll = () => Promise.all(local.map((c) => decider.run(input(c, [consumerWindow(c, 'hour', 10)])).then((v) => v.limit?.remaining)));
    const evalshaCalls = async () => {
      let calls = 0;
      for (const node of redis.nodes('master')) {
        for (const m of (await node.info('commandstats')).matchAll(/cmdstat_(?:eval|evalsha):calls=(\d+)/g)) calls += Number(m[1]);
      }
      return calls;
    };
    const before = await evalshaCalls();
    expect(await decideAll()).to.deep.equal([9, 9, 9, 9, 9, 9]);
    expect((await evalshaCalls()) - before, 'one script call for the six slots of one node').to.equal(1);

    // Move the slot of `moved` to another node by hand, as a reshard does; the decider's map still says `home`.
    const slot = keySlot(keys.banConsumer(moved!));
    const [source, target] = [home, redis.nodes('master').map((n) => `${n.options.host}:${n.options.port}`).find((n) => n !== home)!];
    const direct = (name: string) => new Redis({ host: name.split(':')[0], port: Number(name.split(':')[1]) });
    const [from, to] = [direct(source), direct(target)];
    try {
      const [fromId, toId] = [await from.cluster('MYID'), await to.cluster('MYID')];
      await to.cluster('SETSLOT', slot, 'IMPORTING', fromId);
      await from.cluster('SETSLOT', slot, 'MIGRATING', toId);
      const names = (await from.cluster('GETKEYSINSLOT', slot, 100)) as string[];
      expect(names.length).to.be.above(0);
      await from.migrate(to.options.host!, to.options.port!, '', 0, 5000, 'KEYS', ...names);
      for (const node of [from, to]) await node.cluster('SETSLOT', slot, 'NODE', toId);
      for (const port of cluster.ports) {
        const node = new Redis({ port });
        await node.cluster('SETSLOT', slot, 'NODE', toId).catch(() => undefined);
        node.disconnect();
      }
    } finally {
      from.disconnect();
      to.disconnect();
    }
    expect(redis.slots[slot]![0], 'the decider has not seen the move yet').to.equal(source);
    // The moved consumer's call comes back "not here", is sent again alone and follows the move; the counts go on.
    expect(await decideAll()).to.deep.equal([8, 8, 8, 8, 8, 8]);
    expect(await decideAll()).to.deep.equal([7, 7, 7, 7, 7, 7]);
    expect(others).to.have.length(5);
  });

  it('reads revoked jtis and ip bans from the copy, kept fresh by their announcements', async () => {
    await started();
    await revokeJti(redis, keys, 'jti-r1', Date.now() / 1000 + 60);
    await ban(redis, keys, { ip: '198.51.100.9' }, 'test');
    await eventually(() => (mirror.size === 2 ? true : undefined), 2_000, 'both announcements');
    expect((await decider.run(input('r1', []))).status).to.equal('token_revoked');
    expect((await decider.run(input('r2', [consumerWindow('r2', 'hour', 1)], { clientIp: '198.51.100.9' }))).status).to.equal('ip_banned');
    // The banned request counted nothing: the consumer's one request is still there.
    expect((await decider.run(input('r2', [consumerWindow('r2', 'hour', 1)]))).status).to.equal('allowed');
  });
});
