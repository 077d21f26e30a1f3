/**
 * The gateway's sidecar pool (gateway/sidecar-pool.ts) against real sidecars (gRPC, Redis):
 * checks spread over every connected sidecar, a sidecar that dies costs only its checks in
 * flight, addresses that appear and vanish are picked up, and SIDECAR_ADDR's forms parse.
 */
import type * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { parseConfig } from '../../common/config/load.js';
import { silentLogger } from '../../common/logger.js';
import { parseSidecarTarget, type SidecarTarget } from '../../common/sidecar-target.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { bindServer, buildSidecar } from '../../auth-sidecar/server.js';
import { SidecarPool } from '../../gateway/sidecar-pool.js';
import { eventually, freePort } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

const config = parseConfig(
  JSON.stringify({
    routes: [{ name: 'open', paths: ['/open'], upstream: 'http://127.0.0.1:1', auth: 'optional' }],
    gateway: { check_deadline_ms: 5000 },
    sidecar: { decision_timeout_ms: 4000 },
  }),
);
const request = () => ({ request_id: `r-${Math.random()}`, route: 'open', method: 'GET', path: '/open', client_ip: '127.0.0.1', headers: {} as Record<string, string> });

describe('sidecar pool', function () {
  this.timeout(30_000);
  let redisServer: TestRedis;
  let redis: Redis;
  const servers = new Map<string, grpc.Server>();

  async function startSidecar(): Promise<string> {
    const port = await freePort();
    const { server } = buildSidecar({ config, issuers: loadIssuerKeys(config.issuers, 'x', {}), redis, redisPrefix: 'pool-test', logger: silentLogger() });
    await bindServer(server, '127.0.0.1', port);
    servers.set(`127.0.0.1:${port}`, server);
    return `127.0.0.1:${port}`;
  }

  before(async () => {
    redisServer = await TestRedis.start();
    redis = new Redis(redisServer.url);
  });
  after(async () => {
    for (const server of servers.values()) server.forceShutdown();
    redis.disconnect();
    await redisServer.stop();
  });

  it('spreads checks over every connected sidecar; one killed costs only its checks in flight, then all go to the other', async () => {
    const [a, b] = [await startSidecar(), await startSidecar()];
    const pool = await SidecarPool.open(parseSidecarTarget(`${a},${b}`), 5000, silentLogger());
    try {
      await eventually(async () => (pool.status().connected === 2 ? true : undefined), 10_000, 'both sidecars connected');
      expect(pool.status()).to.deep.equal({ connected: 2, known: 2 });
      // a killed, and at once (before the pool can notice) 40 checks taken in turn: the 20 sent
      // to a fail, the 20 sent to b are answered. Spread, and a loss bounded by a's share.
      servers.get(a)!.forceShutdown();
      // A check that failed is sent again from its rejection: by then the pool has taken the dead
      // sidecar out of the rotation (its channel left READY before the stream's error arrived).
      const retries: Promise<string>[] = [];
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, () =>
          pool.check(request()).then(
            () => 'ok',
            (err: Error & { code?: number }) => {
              retries.push(pool.check(request()).then(() => 'ok', (again: Error) => `failed again: ${again.message}`));
              return `failed:${err.code}`;
            },
          ),
        ),
      );
      const failed = outcomes.filter((o) => o !== 'ok').length;
      expect(failed, outcomes.join(' ')).to.be.within(1, 20);
      expect(outcomes.filter((o) => o === 'ok').length).to.be.at.least(20);
      const retried = await Promise.all(retries);
      expect(retried.every((o) => o === 'ok'), retried.join(' ')).to.equal(true);
      await eventually(async () => (pool.status().connected === 1 ? true : undefined), 10_000, 'the dead sidecar out of the rotation');
      const after = await Promise.all(Array.from({ length: 20 }, () => pool.check(request()).then(() => 'ok', () => 'failed')));
      expect(after.every((o) => o === 'ok'), after.join(' ')).to.equal(true);
    } finally {
      pool.close();
    }
  });

  it('adds addresses that appear under the name and retires those that vanish', async () => {
    const [a, b] = [await startSidecar(), await startSidecar()];
    let resolved = [a];
    const pool = await SidecarPool.open({ kind: 'dns', host: 'sidecars.test', port: 1 }, 5000, silentLogger(), { refreshMs: 100, resolve: async () => resolved });
    try {
      await eventually(async () => (pool.status().connected === 1 ? true : undefined), 10_000, 'the first sidecar connected');
      resolved = [a, b];
      await eventually(async () => (pool.status().connected === 2 ? true : undefined), 10_000, 'the new sidecar connected');
      resolved = [b];
      await eventually(async () => (pool.status().known === 1 ? true : undefined), 10_000, 'the vanished sidecar retired');
      servers.get(a)!.forceShutdown(); // nothing goes there any more
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => pool.check(request()).then(() => 'ok', () => 'failed')));
      expect(outcomes.every((o) => o === 'ok'), outcomes.join(' ')).to.equal(true);
    } finally {
      pool.close();
    }
  });

  it('resolves dns:///localhost:port to the addresses it has, and uses the one that answers', async () => {
    const a = await startSidecar();
    const pool = await SidecarPool.open(parseSidecarTarget(`dns:///localhost:${a.split(':')[1]}`), 5000, silentLogger());
    try {
      expect(pool.status().known).to.be.at.least(1);
      await eventually(async () => (pool.status().connected === 1 ? true : undefined), 10_000, 'the sidecar on 127.0.0.1 connected');
      expect((await pool.check(request())).allow).to.equal(true);
    } finally {
      pool.close();
    }
  });

  it('parses SIDECAR_ADDR: host:port, a list, dns:///name:port; refuses the rest, naming the part', () => {
    expect(parseSidecarTarget('127.0.0.1:50051')).to.deep.equal({ kind: 'static', addresses: ['127.0.0.1:50051'] });
    expect(parseSidecarTarget('a:1, b:2')).to.deep.equal({ kind: 'static', addresses: ['a:1', 'b:2'] });
    expect(parseSidecarTarget('[::1]:50051')).to.deep.equal({ kind: 'static', addresses: ['[::1]:50051'] });
    expect(parseSidecarTarget('dns:///auth-sidecar:50051')).to.deep.equal({ kind: 'dns', host: 'auth-sidecar', port: 50051 } satisfies SidecarTarget);
    expect(() => parseSidecarTarget('auth-sidecar')).to.throw('"auth-sidecar" must be host:port');
    expect(() => parseSidecarTarget('a:1,a:1')).to.throw('lists an address twice');
    expect(() => parseSidecarTarget('a:70000')).to.throw('"a:70000" must be host:port');
    expect(() => parseSidecarTarget('dns:///auth-sidecar')).to.throw('dns:///auth-sidecar must be dns:///name:port');
  });
});
