/**
 * SecurityWatch through Redis connection drops, with a TCP proxy between the gateway's Redis
 * clients and a real redis-server: the proxy cuts any connection the moment it sends SUBSCRIBE,
 * and refuses new connections for a while, so resubscriptions after a reconnect fail, five times
 * over. The watch must raise no unhandled rejection, subscribe again once Redis lets it, and
 * close a banned client's socket. (The chaos test once saw a gateway end on such a rejection;
 * this cut does not reproduce that exact moment: run-main.test.ts covers what the process does.)
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { connectFailFast, type RedisClient } from '../../common/redis.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { ban } from '../../common/security-state.js';
import { OpenSockets, type OpenSocket } from '../../gateway/websocket/open-sockets.js';
import { SecurityWatch } from '../../gateway/websocket/security-watch.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually, freePort } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

/** Forwards to Redis; `cutSubscribes` cuts a connection on SUBSCRIBE and refuses new ones for `refuseMs`. */
class CuttingProxy {
  cutSubscribes = false;
  cuts = 0;
  /** Connections refused after a cut. */
  refused = 0;
  private refuseUntil = 0;
  private readonly pairs = new Set<[Socket, Socket]>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(redisPort: number, refuseMs: number): Promise<CuttingProxy> {
    const port = await freePort();
    let proxy: CuttingProxy | undefined;
    const server = createServer((client) => {
      if (Date.now() < proxy!.refuseUntil) {
        proxy!.refused++;
        return void client.destroy();
      }
      const upstream = connect(redisPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      proxy!.pairs.add(pair);
      const end = () => {
        client.destroy();
        upstream.destroy();
        proxy!.pairs.delete(pair);
      };
      client.on('data', (chunk: Buffer) => {
        if (proxy!.cutSubscribes && /subscribe/i.test(chunk.toString('latin1'))) {
          proxy!.cuts++;
          proxy!.refuseUntil = Date.now() + refuseMs;
          return end();
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    proxy = new CuttingProxy(server, port);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  /** Drops every connection, as a Redis restart would. */
  dropAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  close(): Promise<void> {
    this.dropAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('SecurityWatch through Redis connection drops', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let proxy: CuttingProxy;
  let client: RedisClient;
  let direct: RedisClient;
  let watch: SecurityWatch;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    redis = await TestRedis.start();
    proxy = await CuttingProxy.start(redis.port, 400);
    process.on('unhandledRejection', onUnhandled);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    watch?.stop();
    client?.disconnect();
    direct?.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  it('survives resubscriptions cut again and again (no unhandled rejection), then closes a banned client\'s socket', async () => {
    const keys = new RedisKeys('swtest', 'single');
    client = connectFailFast(`redis://127.0.0.1:${proxy.port}`);
    client.on('error', () => undefined);
    direct = connectFailFast(redis.url);
    const sockets = new OpenSockets();
    const { logger } = captureLogger();
    watch = new SecurityWatch(client, keys, sockets, logger);
    watch.start();
    const subscribed = async () => ((await direct.pubsub('NUMSUB', keys.securityChannel)) as [string, number])[1] === 1 || undefined;
    await eventually(subscribed, 5_000, 'the watch subscribed');

    proxy.cutSubscribes = true;
    for (let drop = 0; drop < 5; drop++) {
      const cutsBefore = proxy.cuts;
      proxy.dropAll();
      await eventually(() => proxy.cuts > cutsBefore || undefined, 10_000, `a resubscription cut (drop ${drop + 1})`);
      // A reconnect refused after the cut: the second failure in a row, where ioredis (maxRetriesPerRequest 1) gives up on what it holds.
      const refusedBefore = proxy.refused;
      await eventually(() => proxy.refused > refusedBefore || undefined, 10_000, `a reconnect refused (drop ${drop + 1})`);
    }
    proxy.cutSubscribes = false;
    proxy.dropAll();
    await eventually(subscribed, 10_000, 'the watch subscribed again');
    expect(unhandled.map(String)).to.deep.equal([]);

    let closedWith: string | undefined;
    const socket: OpenSocket = { jti: null, consumer: null, iat: 0, kid: null, clientIp: '203.0.113.77', close: (reason) => (closedWith = reason) };
    sockets.add(socket);
    await ban(direct, keys, { ip: '203.0.113.77' }, 'a test ban', 60);
    await eventually(() => closedWith, 5_000, 'the socket closed');
    expect(closedWith).to.equal('banned');
  });
});
