/** scripts/healthcheck.js, as the containers run it: exit 0 healthy, 1 not, 2 misused. */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { parseConfig } from '../../common/config/load.js';
import { silentLogger } from '../../common/logger.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { bindServer, buildSidecar } from '../../auth-sidecar/server.js';
import { eventually, freePort } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { TestRedis } from '../helpers/redis-server.js';

describe('container health check script', function () {
  this.timeout(30_000);
  const check = async (...args: string[]) => (await runCli('scripts/healthcheck.js', args, {})).code;

  it('answers an HTTP endpoint by its status', async () => {
    let status = 200;
    const server = createServer((_req, res) => res.writeHead(status).end()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    try {
      expect(await check('http', url)).to.equal(0);
      status = 503;
      expect(await check('http', url)).to.equal(1);
    } finally {
      server.close();
    }
    expect(await check('http', url)).to.equal(1); // nothing listening
  });

  it("answers the sidecar's gRPC health service: SERVING only while Redis answers, and 1 where none answers", async () => {
    const redisServer = await TestRedis.start();
    const redis = new Redis(redisServer.url);
    redis.on('error', () => undefined); // refused while the test has Redis stopped
    const config = parseConfig(JSON.stringify({ routes: [{ name: 'a', paths: ['/a'], upstream: 'http://127.0.0.1:1' }] }));
    const { server } = buildSidecar({ config, issuers: loadIssuerKeys(config.issuers, 'x', {}), redis, redisPrefix: 'hc-test', logger: silentLogger() });
    const port = await freePort();
    await bindServer(server, '127.0.0.1', port);
    try {
      await eventually(async () => ((await check('grpc', `127.0.0.1:${port}`)) === 0 ? true : undefined), 10_000, 'SERVING once Redis is connected');
      await redisServer.stop();
      await eventually(async () => ((await check('grpc', `127.0.0.1:${port}`)) === 1 ? true : undefined), 10_000, 'NOT_SERVING without Redis');
      await redisServer.resume();
      await eventually(async () => ((await check('grpc', `127.0.0.1:${port}`)) === 0 ? true : undefined), 10_000, 'SERVING again');
    } finally {
      server.forceShutdown();
      redis.disconnect();
      await redisServer.stop();
    }
    expect(await check('grpc', `127.0.0.1:${port}`)).to.equal(1);
    expect(await check('ftp', 'x')).to.equal(2);
  });
});
