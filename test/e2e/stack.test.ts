/**
 * The whole product as it runs: the built gateway, sidecar and worker processes, a private
 * redis-server, the machine's PostgreSQL and a recording upstream. Every request made here
 * must come back from the query API exactly once, with its decision and reason.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { freePorts, eventually } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { ProductProcess, runCli } from '../helpers/processes.js';
import { RecordingUpstream } from '../helpers/recording-upstream.js';
import { TestRedis } from '../helpers/redis-server.js';

const SECRET = 'e2e-secret-that-is-long-enough-0123456789';
const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
const LIMIT = 4;

interface Sent {
  requestId: string;
  status: number;
  decision: 'allow' | 'deny';
  reason: string | null;
}

describe('the stack end to end', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  let upstream: RecordingUpstream;
  let dir: string;
  let schema: string;
  let env: Record<string, string>;
  let gatewayUrl: string;
  let auditUrl: string;
  const processes: ProductProcess[] = [];
  let sidecar: ProductProcess;
  const sent: Sent[] = [];

  before(async () => {
    redis = await TestRedis.start();
    upstream = await RecordingUpstream.start();
    dir = mkdtempSync(join(tmpdir(), 'gw-e2e-'));
    schema = uniqueSchema('e2e');
    writeFileSync(
      join(dir, 'gateway.yml'),
      `
issuers:
  - { name: e2e, iss: e2e-issuer, audience: api, algorithms: [HS256], secret_env: E2E_SECRET }
tiers:
  free: { minute: 1000 }
routes:
  - { name: users, paths: [/users], upstream: "${upstream.url}", acl: { allow: [customers, admins] }, rate_limit: { by: consumer } }
  - { name: payments, paths: [/payments], upstream: "${upstream.url}", acl: { allow: [admins] } }
  - { name: limited, paths: [/limited], upstream: "${upstream.url}", rate_limit: { by: consumer, day: ${LIMIT} } }
`,
    );
    const [gatewayPort, sidecarPort, auditPort] = (await freePorts(3)) as [number, number, number];
    env = {
      NODE_ENV: 'test',
      GATEWAY_CONFIG: join(dir, 'gateway.yml'),
      REDIS_URL: redis.url,
      REDIS_PREFIX: `e2e${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'warn',
    };
    sidecar = await ProductProcess.start('auth-sidecar', 'auth-sidecar/main.js', { ...env, SIDECAR_PORT: String(sidecarPort), E2E_SECRET: SECRET }, sidecarPort);
    processes.push(sidecar);
    processes.push(
      await ProductProcess.start(
        'audit-worker',
        'audit-worker/main.js',
        { ...env, AUDIT_PORT: String(auditPort), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: schema, ADMIN_TOKEN },
        auditPort,
      ),
    );
    processes.push(
      await ProductProcess.start(
        'gateway',
        'gateway/main.js',
        { ...env, GATEWAY_PORT: String(gatewayPort), SIDECAR_ADDR: `127.0.0.1:${sidecarPort}`, AUDIT_SPOOL_DIR: join(dir, 'spool') },
        gatewayPort,
      ),
    );
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    auditUrl = `http://127.0.0.1:${auditPort}`;
  });

  after(async () => {
    for (const p of processes.reverse()) await p.kill();
    await upstream?.close();
    await redis?.stop();
    if (schema) await dropSchema(schema);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const p of processes) console.error(`--- ${p.name}\n${p.output.join('').slice(-4000)}`);
  });

  function token(claims: Record<string, unknown> = {}, secret = SECRET, options: jwt.SignOptions = {}): string {
    return jwt.sign({ sub: 'alice', groups: ['customers'], jti: randomUUID(), ...claims }, secret, {
      algorithm: 'HS256',
      issuer: 'e2e-issuer',
      audience: 'api',
      expiresIn: 300,
      ...options,
    });
  }

  /** One request through the gateway, remembered with the decision the audit must show. */
  async function call(path: string, headers: Record<string, string>, expected: Omit<Sent, 'requestId' | 'status'>): Promise<Response> {
    const requestId = `e2e-${randomUUID()}`;
    const res = await fetch(gatewayUrl + path, { headers: { ...headers, 'X-Request-Id': requestId } });
    expect(res.headers.get('x-request-id')).to.equal(requestId);
    sent.push({ requestId, status: res.status, ...expected });
    return res;
  }

  it('lets a valid token through with identity headers and none of the client-forged ones', async () => {
    const res = await call(
      '/users/7?x=1',
      { Authorization: `Bearer ${token()}`, 'X-Consumer-ID': 'e2e:admin', 'X-Consumer-Groups': 'admins', 'X-Forwarded-For': '6.6.6.6' },
      { decision: 'allow', reason: null },
    );
    expect(res.status).to.equal(200);
    const seen = upstream.find(sent.at(-1)!.requestId);
    expect(seen?.url).to.equal('/users/7?x=1');
    expect(seen?.headers['x-consumer-id']).to.equal('e2e:alice');
    expect(seen?.headers['x-consumer-username']).to.equal('alice');
    expect(seen?.headers['x-consumer-groups']).to.equal('customers');
    expect(seen?.headers['x-forwarded-for']).to.equal('127.0.0.1');
  });

  it('answers 401 token_missing with WWW-Authenticate when no token is sent', async () => {
    const res = await call('/users/7', {}, { decision: 'deny', reason: 'token_missing' });
    expect(res.status).to.equal(401);
    expect(res.headers.get('www-authenticate')).to.match(/^Bearer /);
    expect(await res.json()).to.deep.include({ reason: 'token_missing', request_id: sent.at(-1)!.requestId });
  });

  it('answers 401 token_invalid to a token signed with another secret', async () => {
    const res = await call('/users/7', { Authorization: `Bearer ${token({}, 'another-secret-that-is-long-enough-000000')}` }, { decision: 'deny', reason: 'token_invalid' });
    expect(res.status).to.equal(401);
    expect((await res.json()).reason).to.equal('token_invalid');
  });

  it('answers 401 token_invalid to a token whose alg is none', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', iss: 'e2e-issuer', aud: 'api', exp: now + 300, groups: ['admins'] })}.`;
    const res = await call('/users/7', { Authorization: `Bearer ${unsigned}` }, { decision: 'deny', reason: 'token_invalid' });
    expect(res.status).to.equal(401);
  });

  it('answers 401 token_revoked once the admin CLI revokes the token', async () => {
    const revoked = token();
    const cli = await runCli('cli/admin.js', ['revoke', '--token', revoked], env);
    expect(cli.code, cli.stderr).to.equal(0);
    const res = await call('/users/7', { Authorization: `Bearer ${revoked}` }, { decision: 'deny', reason: 'token_revoked' });
    expect(res.status).to.equal(401);
  });

  it('answers 403 forbidden when the ACL does not admit the groups', async () => {
    const res = await call('/payments', { Authorization: `Bearer ${token()}` }, { decision: 'deny', reason: 'forbidden' });
    expect(res.status).to.equal(403);
  });

  it(`allows ${LIMIT} requests of a consumer, then answers 429 with Retry-After`, async () => {
    const bob = token({ sub: 'bob' });
    for (let i = 0; i < LIMIT; i++) {
      const res = await call('/limited', { Authorization: `Bearer ${bob}` }, { decision: 'allow', reason: null });
      expect(res.status).to.equal(200);
      expect(res.headers.get('ratelimit-remaining')).to.equal(String(LIMIT - 1 - i));
    }
    const res = await call('/limited', { Authorization: `Bearer ${bob}` }, { decision: 'deny', reason: 'rate_limited' });
    expect(res.status).to.equal(429);
    expect(Number(res.headers.get('retry-after'))).to.be.within(1, 86_400);
  });

  it("stores the token's iat in the event (a consumer revocation covers the tokens issued up to it), and none without a token", async () => {
    const iat = Math.floor(Date.now() / 1000) - 42;
    const stored = async (headers: Record<string, string>) => {
      const requestId = `e2e-${randomUUID()}`;
      await fetch(`${gatewayUrl}/users/7`, { headers: { ...headers, 'X-Request-Id': requestId } });
      return eventually(async () => {
        const found = await fetch(`${auditUrl}/v1/events?request_id=${requestId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
        return ((await found.json()) as { events: { token_iat: string | null }[] }).events[0];
      }, 15_000, `the audit event of ${requestId}`);
    };
    expect((await stored({ Authorization: `Bearer ${token({ iat })}` })).token_iat).to.equal(new Date(iat * 1000).toISOString());
    expect((await stored({})).token_iat).to.equal(null);
  });

  it('stores the event of a path and a user agent over the audit limits, cut to them and marked truncated', async () => {
    const requestId = `e2e-${randomUUID()}`;
    const path = `/users/${'a'.repeat(4200)}`;
    const userAgent = `agent/${'u'.repeat(10_000)}`;
    const res = await fetch(gatewayUrl + path, { headers: { Authorization: `Bearer ${token()}`, 'User-Agent': userAgent, 'X-Request-Id': requestId } });
    expect(res.status).to.equal(200);
    expect(upstream.find(requestId)?.url).to.equal(path); // the upstream still sees the whole path
    const events = await eventually(async () => {
      const found = await fetch(`${auditUrl}/v1/events?request_id=${requestId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await found.json()) as { events: { path: string; user_agent: string; truncated: string[]; decision: string }[] };
      return body.events.length > 0 ? body.events : undefined;
    }, 15_000, `the audit event of ${requestId}`);
    expect(events).to.have.length(1);
    expect(events[0]!.decision).to.equal('allow');
    expect(events[0]!.path).to.have.length(4096);
    expect(events[0]!.path).to.equal(path.slice(0, 4096));
    expect(events[0]!.user_agent).to.equal(userAgent.slice(0, 512));
    expect(events[0]!.truncated).to.have.members(['path', 'user_agent']);
  });

  it('answers 503 auth_unavailable within 1 s once the sidecar is killed', async () => {
    await sidecar.kill('SIGKILL');
    const started = Date.now();
    const res = await call('/users/7', { Authorization: `Bearer ${token()}` }, { decision: 'deny', reason: 'auth_unavailable' });
    expect(res.status).to.equal(503);
    expect(Date.now() - started).to.be.below(1000);
  });

  it('stores every request exactly once with its decision and reason, found through the query API', async () => {
    expect(sent.length).to.equal(LIMIT + 8);
    for (const request of sent) {
      const events = await eventually(async () => {
        const res = await fetch(`${auditUrl}/v1/events?request_id=${request.requestId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
        const body = (await res.json()) as { events: { decision: string; reason: string | null; status: number }[] };
        return body.events.length > 0 ? body.events : undefined;
      }, 15_000, `the audit event of ${request.requestId}`);
      expect(events, request.requestId).to.have.length(1);
      expect(events[0]).to.include({ decision: request.decision, reason: request.reason, status: request.status });
    }
    // Denied requests never reached the upstream.
    for (const request of sent.filter((r) => r.decision === 'deny')) expect(upstream.find(request.requestId)).to.equal(undefined);
  });

  it('finds the events of a subject with the audit CLI', async () => {
    const cli = await runCli('cli/audit.js', ['events', '--sub', 'bob', '--since', '1h', '--json'], { ...env, AUDIT_URL: auditUrl, ADMIN_TOKEN });
    expect(cli.code, cli.stderr).to.equal(0);
    const events = JSON.parse(cli.stdout) as { sub: string; route: string }[];
    expect(events).to.have.length(LIMIT + 1);
    expect(events.every((e) => e.sub === 'bob' && e.route === 'limited')).to.equal(true);
  });
});
