/**
 * The stack on a local 3-master Redis Cluster (REDIS_CLUSTER_NODES), through the real
 * processes: every key in the cluster layout, each decision's calls within one slot; limits
 * exact whether a decision is one slot or two; revoked jtis and ip bans, which a consumer's
 * decision reads from the sidecar's copy, applied within 1 s, with their precedence and without
 * spending quota; the copy rescanned after a lost subscription and after a restart.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { keySlot } from '../../common/redis-slot.js';
import { callFrom } from '../helpers/call-from.js';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('Redis Cluster, through the real processes', function () {
  this.timeout(90_000);
  let cluster: TestRedisCluster;
  let stack: RunningStack;
  let redis: Cluster;

  before(async () => {
    cluster = await TestRedisCluster.start(3);
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required, rate_limit: { by: consumer, minute: 3 } }
  - { name: shared, paths: [/shared], upstream: "${upstream}", auth: required, rate_limit: { by: ip, minute: 4 } }
  - { name: open, paths: [/open], upstream: "${upstream}", auth: none, rate_limit: { by: ip, minute: 2 } }
anomaly:
  rules:
    auth_failure_burst: { threshold: 10, window: 60, ban_ttl: 60 }
`,
      {},
      { redisEnv: async () => ({ REDIS_CLUSTER_NODES: cluster.nodes }) },
    );
    redis = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }]);
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
    await cluster?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const url = (path: string) => stack.gatewayUrl + path;
  const prefix = () => stack.env.REDIS_PREFIX!;

  /** Every key of the stack on any master matching `match`. */
  async function keysMatching(match: string): Promise<string[]> {
    const found: string[] = [];
    for (const node of redis.nodes('master')) found.push(...(await node.keys(match)));
    return found;
  }

  async function admin(...args: string[]): Promise<string> {
    const cli = await stack.admin(args);
    expect(cli.code, `admin ${args.join(' ')}: ${cli.stderr}`).to.equal(0);
    return cli.stdout;
  }

  /** Polls `ip`'s call with `token` until it answers `status`; resolves how long that took. */
  async function within(ip: string, token: string, status: number, path = '/shared'): Promise<number> {
    const since = Date.now();
    await eventually(async () => ((await callFrom(url(path), ip, token)).status === status ? true : undefined), 5_000, `${status} from ${ip}`);
    return Date.now() - since;
  }

  it('limits a consumer exactly across concurrent requests, with counters, queue and bans in the cluster layout, one slot per call', async () => {
    const sub = `cl-${randomUUID().slice(0, 8)}`;
    const token = stack.token({ sub });
    const calls = await Promise.all(Array.from({ length: 12 }, () => stack.call('/users/1', { Authorization: `Bearer ${token}` })));
    expect(calls.filter((c) => c.status === 200)).to.have.length(3);
    expect(calls.filter((c) => c.status === 429)).to.have.length(9);
    expect((await stack.auditEvent(calls[0]!.requestId)).request_id).to.equal(calls[0]!.requestId);

    const counters = await keysMatching(`${prefix()}:{consumer:e2e%3A${sub}}:rl:*`);
    expect(counters).to.have.length(1);
    // The audit queue's keys share the {bull} slot; the revocation and ban keys the consumer's.
    const queueKeys = await keysMatching(`${prefix()}:{bull}:*`);
    expect(queueKeys.length).to.be.above(0);
    expect(new Set(queueKeys.map(keySlot)).size).to.equal(1);
    expect(keySlot(`${prefix()}:{consumer:e2e%3A${sub}}:ban`)).to.equal(keySlot(counters[0]!));
  });

  it('limits a route counted by ip across consumers exactly (a decision in two slots: the consumer and the ip)', async () => {
    const ip = '127.0.0.41';
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => callFrom(url('/shared'), ip, stack.token({ sub: `ip-sharer-${i % 4}` })).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).to.have.length(4);
    expect(statuses.filter((s) => s === 429)).to.have.length(12);
    expect(await keysMatching(`${prefix()}:{ip:127.0.0.41}:rl:*`)).to.have.length(1);
  });

  it('limits an anonymous route by ip exactly (the ip ban and its counters in one slot)', async () => {
    const statuses = await Promise.all(Array.from({ length: 8 }, () => callFrom(url('/open'), '127.0.0.42').then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).to.have.length(2);
    await admin('bans', 'add', '--ip', '127.0.0.43', '--reason', 'cluster anonymous ban');
    expect((await callFrom(url('/open'), '127.0.0.43')).status).to.equal(403);
  });

  it('refuses a revoked jti from the sidecar copy within 1 s, and bans list finds it on its master', async () => {
    const token = stack.token({ sub: 'cl-revoked' });
    const { jti } = jwt.decode(token) as { jti: string };
    expect((await callFrom(url('/users/1'), '127.0.0.44', token)).status).to.equal(200);
    await admin('revoke', '--jti', jti, '--reason', 'cluster revocation');
    expect(await within('127.0.0.44', token, 401, '/users/1')).to.be.below(1_000);
    const listed = JSON.parse(await admin('bans', 'list', '--json')) as { kind: string; subject: string }[];
    expect(listed.filter((b) => b.kind === 'jti' && b.subject === jti)).to.have.length(1);
    expect(listed.filter((b) => b.kind === 'ip' && b.subject === '127.0.0.43')).to.have.length(1);
  });

  it("bans a consumer's ip from the copy within 1 s without spending the consumer's quota, and lifts it within 1 s", async () => {
    const ip = '127.0.0.45';
    const token = stack.token({ sub: `cl-quota-${randomUUID().slice(0, 8)}` });
    await admin('bans', 'add', '--ip', ip, '--reason', 'cluster ip ban');
    expect(await within(ip, token, 403, '/users/1')).to.be.below(1_000);
    for (let i = 0; i < 5; i++) expect((await callFrom(url('/users/1'), ip, token)).status).to.equal(403);
    await admin('bans', 'remove', '--ip', ip, '--reason', 'lifted');
    expect(await within(ip, token, 200, '/users/1')).to.be.below(1_000);
    // That 200 was the first of the consumer's 3: the banned requests counted nothing.
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await callFrom(url('/users/1'), ip, token)).status);
    expect(after).to.deep.equal([200, 200, 429]);
  });

  it('answers a consumer revocation before an ip ban, as on one Redis', async () => {
    const sub = `cl-both-${randomUUID().slice(0, 8)}`;
    const token = stack.token({ sub });
    await admin('revoke', '--consumer', `e2e:${sub}`, '--reason', 'cluster precedence');
    await admin('bans', 'add', '--ip', '127.0.0.46', '--reason', 'cluster precedence');
    expect(await callFrom(url('/users/1'), '127.0.0.46', token)).to.deep.equal({ status: 401, reason: 'token_revoked' });
    expect(await callFrom(url('/users/1'), '127.0.0.46', stack.token({ sub: 'cl-other' }))).to.deep.equal({ status: 403, reason: 'banned' });
  });

  it('rescans after losing its subscriptions: a ban announced while they were down still applies', async () => {
    const ip = '127.0.0.47';
    const token = stack.token({ sub: 'cl-resub' });
    expect((await callFrom(url('/shared'), ip, token)).status).to.equal(200);
    // Cut every pub/sub connection (the sidecar's copy's), then ban before they are back.
    for (const port of cluster.ports) {
      const node = new Redis({ port });
      await node.client('KILL', 'TYPE', 'pubsub');
      node.disconnect();
    }
    await admin('bans', 'add', '--ip', ip, '--reason', 'while unsubscribed');
    await within(ip, token, 403);
    expect(stack.process('auth-sidecar').output.join('')).to.include('ban_copy_unsynced');
    expect((await callFrom(url('/shared'), '127.0.0.48', token)).status).to.equal(200);
  });

  it('scans at start: a ban written while the sidecar was down applies once it is back', async () => {
    const ip = '127.0.0.49';
    const token = stack.token({ sub: 'cl-restart' });
    await stack.process('auth-sidecar').kill();
    await admin('bans', 'add', '--ip', ip, '--reason', 'while the sidecar was down');
    await stack.restart('auth-sidecar');
    await within('127.0.0.50', token, 200);
    expect(await callFrom(url('/shared'), ip, token)).to.deep.equal({ status: 403, reason: 'banned' });
  });

  it("bans automatically: the worker's anomaly rules count on the cluster, and its ip ban reaches the sidecar's copy", async () => {
    const ip = '127.0.0.52';
    const valid = stack.token({ sub: 'cl-victim' });
    for (let i = 0; i < 10; i++) expect((await callFrom(url('/users/1'), ip, 'forged.token.value')).status).to.equal(401);
    await within(ip, valid, 403, '/users/1');
    expect(await keysMatching(`${prefix()}:{anomaly}:*`)).to.not.have.length(0);
    expect(await callFrom(url('/users/1'), '127.0.0.53', valid)).to.deep.include({ status: 200 });
  });

  it('names a bad REDIS_CLUSTER_NODES, and one set with REDIS_SENTINELS, in the CLI without touching Redis', async () => {
    const bad = await runCli('cli/admin.js', ['bans', 'list'], { ...stack.env, REDIS_CLUSTER_NODES: 'nohost' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('REDIS_CLUSTER_NODES: must be host:port of each cluster node, comma-separated');
    const both = await runCli('cli/admin.js', ['bans', 'list'], { ...stack.env, REDIS_SENTINELS: '127.0.0.1:1' });
    expect(both.code).to.equal(2);
    expect(both.stderr).to.include('REDIS_CLUSTER_NODES: set it or REDIS_SENTINELS, not both');
  });
});
