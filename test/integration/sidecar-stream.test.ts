/**
 * The gateway's streaming client against the real sidecar server (gRPC, Redis): answers reach
 * the call that asked, deadlines hold, and a restarted sidecar is used again.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { parseConfig } from '../../common/config/load.js';
import { silentLogger } from '../../common/logger.js';
import { loadAuthProto } from '../../common/proto.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { bindServer, buildSidecar } from '../../auth-sidecar/server.js';
import { CheckFailedError, SidecarClient } from '../../gateway/sidecar-client.js';
import { freePort, eventually } from '../helpers/net.js';
import { TestRedis } from '../helpers/redis-server.js';

const SECRET = 's'.repeat(40);
const config = parseConfig(
  JSON.stringify({
    issuers: [{ name: 't', iss: 't-issuer', algorithms: ['HS256'], secret_env: 'T_SECRET' }],
    routes: [
      { name: 'open', paths: ['/open'], upstream: 'http://127.0.0.1:1', auth: 'optional' },
      { name: 'closed', paths: ['/closed'], upstream: 'http://127.0.0.1:1', auth: 'required' },
    ],
    // Client and server share this process's event loop: a stall of one delays the other's
    // decisions, which is no news about the stream. Redis' speed is tested elsewhere.
    gateway: { check_deadline_ms: 5000 },
    sidecar: { decision_timeout_ms: 4000 },
  }),
);
const token = (sub: string) => jwt.sign({ sub }, SECRET, { algorithm: 'HS256', issuer: 't-issuer', expiresIn: 60 });
const request = (route: string, authorization?: string) => ({
  request_id: `r-${Math.random()}`,
  route,
  method: 'GET',
  path: `/${route}`,
  client_ip: '127.0.0.1',
  headers: (authorization ? { authorization } : {}) as Record<string, string>,
});

describe('sidecar check stream', () => {
  let redisServer: TestRedis;
  let redis: Redis;
  let port: number;
  let server: grpc.Server;

  async function startSidecar(): Promise<void> {
    server = buildSidecar({ config, issuers: loadIssuerKeys(config.issuers, 'x', { T_SECRET: SECRET }), redis, redisPrefix: 'stream-test', logger: silentLogger() }).server;
    await bindServer(server, '127.0.0.1', port);
  }

  before(async () => {
    redisServer = await TestRedis.start();
    redis = new Redis(redisServer.url);
    port = await freePort();
    await startSidecar();
  });
  after(async () => {
    server.forceShutdown();
    redis.disconnect();
    await redisServer.stop();
  });

  it('matches 500 concurrent answers to the calls that asked', async () => {
    const client = new SidecarClient(`127.0.0.1:${port}`, 2000);
    const subs = Array.from({ length: 500 }, (_, i) => `user-${i}`);
    const answers = await Promise.all(subs.map((sub, i) => client.check(request(i % 5 === 0 ? 'closed' : 'open', i % 5 === 0 ? undefined : `Bearer ${token(sub)}`))));
    answers.forEach((answer, i) => {
      if (i % 5 === 0) expect(answer).to.include({ allow: false, reason: 'token_missing' });
      else expect(answer.identity?.sub).to.equal(subs[i]);
    });
    client.close();
  });

  it('fails a call with DEADLINE_EXCEEDED when no answer comes in time', async () => {
    const silentPort = await freePort();
    const silent = new grpc.Server();
    silent.addService(loadAuthProto().auth.v1.AuthService.service, { Check: () => undefined, CheckStream: () => undefined });
    await bindServer(silent, '127.0.0.1', silentPort);
    const client = new SidecarClient(`127.0.0.1:${silentPort}`, 100);
    const started = Date.now();
    const err = await client.check(request('open')).then(() => undefined, (e: CheckFailedError) => e);
    expect(err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).to.be.within(90, 1000);
    client.close();
    silent.forceShutdown();
  });

  it('fails pending calls at once when the sidecar goes away, and uses it again once it is back', async () => {
    const client = new SidecarClient(`127.0.0.1:${port}`, 5000);
    expect((await client.check(request('open'))).allow).to.equal(true);
    server.forceShutdown();
    const started = Date.now();
    const err = await client.check(request('open')).then(() => undefined, (e: CheckFailedError) => e);
    // A server shutting down cancels the stream; a dead one is unavailable: both fail closed.
    expect(err?.code).to.be.oneOf([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);
    expect(Date.now() - started).to.be.below(1000);
    await startSidecar();
    const answer = await eventually(() => client.check(request('open')).then((a) => a, () => undefined), 10_000, 'a decision after restart');
    expect(answer.allow).to.equal(true);
    client.close();
  });

  it('answers 300 checks sent in one tick with 15 KB headers each (more than one gRPC message holds)', async () => {
    const client = new SidecarClient(`127.0.0.1:${port}`, 5000);
    const big = `Bearer ${'x'.repeat(15_000)}`;
    const answers = await Promise.all(Array.from({ length: 300 }, () => client.check(request('closed', big)).then((a) => a.reason, (e: Error) => e.message)));
    expect(new Set(answers)).to.deep.equal(new Set(['token_invalid']));
    client.close();
  });

  it('stays healthy once an unused channel goes idle, and is connected again at once', async () => {
    const client = new SidecarClient(`127.0.0.1:${port}`, 5000, { idleTimeoutMs: 1000 });
    await eventually(() => client.isConnected() || undefined, 5000, 'the channel connected');
    // The sidecar stays up: the channel leaves READY only because grpc-js idles it.
    await new Promise<void>((resolve) => client.channel.watchConnectivityState(grpc.connectivityState.READY, Date.now() + 10_000, () => resolve()));
    await eventually(() => client.isConnected() || undefined, 2000, 'the channel connected again after going idle');
    client.close();
  });
});
