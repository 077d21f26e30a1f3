/**
 * `npm run start:scaled` as a user runs it (the real launcher, dist/scripts/start.js --scaled):
 * 3 gateways behind the local balancer, 2 sidecars, 2 workers on one Redis and one PostgreSQL
 * store. A limit holds exactly across all of them, every answered request is stored once, a
 * sidecar killed mid-traffic costs only its checks in flight, and a revocation or a ban applies
 * through every gateway and sidecar within 1 s. Then the same launcher with the development
 * TCP forwarder in place of nginx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, get } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import { PROJECT_ROOT } from '../../common/paths.js';
import { HAS_NGINX } from '../../scripts/local-balancer.js';
import { eventually } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { runCli } from '../helpers/processes.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { TestRedis } from '../helpers/redis-server.js';

const SECRET = 'scaled-secret-that-is-long-enough-0123456789';
const ADMIN_TOKEN = 'scaled-admin-token-0123456789';
const LIMIT = 20;

/** True when `port` can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A base port with `count` bindable ports after it (the launcher numbers replicas from it),
 * below Linux's ephemeral range (32768-60999): a port there can be taken by any outgoing
 * connection between this check and the launcher's bind.
 */
async function freeRange(count: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => bindable(base + i)));
    if (free.every(Boolean)) return base;
  }
}

class ScaledStack {
  readonly output: string[] = [];
  readonly pids = new Map<string, number>();

  private constructor(
    readonly child: ChildProcess,
    readonly env: Record<string, string>,
    readonly ports: { balancer: number; sidecar: number; audit: number },
    private readonly dir: string,
    private readonly redis: TestRedis | TestRedisCluster,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        this.output.push(text);
        for (const m of text.matchAll(/^\[start\] (\S+) pid (\d+)$/gm)) this.pids.set(m[1]!, Number(m[2]));
      });
    }
  }

  static async start(options: { devBalancer?: boolean; cluster?: boolean } = {}): Promise<ScaledStack> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-scaled-'));
    const redis = options.cluster ? await TestRedisCluster.start() : await TestRedis.start();
    const [balancer, sidecar, audit, upstream] = [await freeRange(4), await freeRange(2), await freeRange(2), await freeRange(1)];
    writeFileSync(
      join(dir, 'gateway.yml'),
      `issuers:
  - { name: e2e, iss: e2e-issuer, audience: api, algorithms: [HS256], secret_env: SCALED_SECRET }
# Deadlines for a machine busy with other tests: exactness is the point here, not speed.
gateway: { trusted_proxies: "\${TRUSTED_PROXIES:-}", check_deadline_ms: 3000 }
sidecar: { decision_timeout_ms: 2000 }
routes:
  - { name: limited, paths: [/limited], upstream: "http://127.0.0.1:${upstream}", auth: required, rate_limit: { by: consumer, minute: ${LIMIT} } }
  - { name: sliding, paths: [/sliding], upstream: "http://127.0.0.1:${upstream}", auth: required, rate_limit: { by: consumer, minute: ${LIMIT}, algorithm: sliding } }
  - { name: gcra, paths: [/gcra], upstream: "http://127.0.0.1:${upstream}", auth: required, rate_limit: { by: consumer, minute: ${LIMIT}, algorithm: gcra } }
  - { name: users, paths: [/users], upstream: "http://127.0.0.1:${upstream}", auth: required }
`,
    );
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      DATA_DIR: dir,
      GATEWAY_CONFIG: join(dir, 'gateway.yml'),
      ...(redis instanceof TestRedisCluster ? { REDIS_CLUSTER_NODES: redis.nodes } : { REDIS_URL: redis.url }),
      REDIS_PREFIX: `scaled-${randomUUID().slice(0, 8)}`,
      AUDIT_DB_URL: PG_URL,
      AUDIT_DB_SCHEMA: uniqueSchema('scaled'),
      ADMIN_TOKEN,
      SCALED_SECRET: SECRET,
      GATEWAY_PORT: String(balancer),
      SIDECAR_PORT: String(sidecar),
      AUDIT_PORT: String(audit),
      DEMO_UPSTREAM_PORT: String(upstream),
      LOG_LEVEL: 'warn',
      ...(options.devBalancer ? { START_BALANCER: 'dev' } : {}),
    };
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/scripts/start.js'), '--scaled'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stack = new ScaledStack(child, env, { balancer, sidecar, audit }, dir, redis);
    // Up, or the launcher's own exit (a process failed to start) at once, with what it printed.
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`the launcher exited (${code}) before the stack was up:\n${stack.output.join('').slice(-4000)}`);
    });
    try {
      await Promise.race([eventually(async () => (stack.output.join('').includes('The scaled stack is up') ? true : undefined), 90_000, 'the scaled stack to start'), exited]);
    } catch (err) {
      await stack.stop();
      throw new Error(`${(err as Error).message}\n${stack.output.join('').slice(-4000)}`);
    }
    exited.catch(() => undefined); // its later exit (stop) is expected
    return stack;
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.balancer}`;
  }

  gatewayUrl(i: number): string {
    return `http://127.0.0.1:${this.ports.balancer + i}`;
  }

  token(sub: string): string {
    return jwt.sign({ sub, jti: randomUUID() }, SECRET, { algorithm: 'HS256', issuer: 'e2e-issuer', audience: 'api', expiresIn: 300 });
  }

  async call(path: string, token: string, base = this.url): Promise<{ status: number; requestId: string }> {
    const requestId = `sc-${randomUUID()}`;
    const res = await fetch(base + path, { headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': requestId } });
    await res.arrayBuffer();
    return { status: res.status, requestId };
  }

  admin(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli('cli/admin.js', args, this.env);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      await exited;
    }
    await dropSchema(this.env.AUDIT_DB_SCHEMA!);
    await this.redis.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The scaled topology's promises, on one Redis or on a Redis Cluster. */
function scaledChecks(title: string, options: { cluster?: boolean }): void {
  describe(title, function () {
    this.timeout(180_000);
    let stack: ScaledStack;
    let db: pg.Client;
    const answered: string[] = [];

    before(async () => {
      stack = await ScaledStack.start(options);
      db = new pg.Client({ connectionString: PG_URL });
      await db.connect();
    });
    after(async () => {
      await db?.end();
      await stack?.stop();
    });
    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.error(stack.output.join('').slice(-6000));
    });

    const stored = async (requestIds: string[]): Promise<Map<string, { n: number; gateways: string[] }>> => {
      const { rows } = await db.query<{ request_id: string; n: string; gateways: string[] }>(
        `SELECT request_id, count(*) AS n, array_agg(gateway_id) AS gateways FROM "${stack.env.AUDIT_DB_SCHEMA}".audit_events WHERE request_id = ANY($1) GROUP BY 1`,
        [requestIds],
      );
      return new Map(rows.map((r) => [r.request_id, { n: Number(r.n), gateways: r.gateways }]));
    };

    it(`allows exactly ${LIMIT} of 60 concurrent requests of one consumer spread over all 3 gateways`, async () => {
      const token = stack.token(`bob-${randomUUID()}`);
      const calls = await Promise.all(Array.from({ length: 60 }, () => stack.call('/limited/1', token)));
      answered.push(...calls.map((c) => c.requestId));
      expect(calls.filter((c) => c.status !== 200 && c.status !== 429).map((c) => c.status)).to.deep.equal([]);
      expect(calls.filter((c) => c.status === 200)).to.have.length(LIMIT);
      expect(calls.filter((c) => c.status === 429)).to.have.length(60 - LIMIT);
      const events = await eventually(async () => {
        const found = await stored(calls.map((c) => c.requestId));
        return found.size === 60 ? found : undefined;
      }, 30_000, 'the 60 events stored');
      const gateways = new Set([...events.values()].flatMap((e) => e.gateways));
      expect(gateways.size, [...gateways].join(' ')).to.equal(3);
    });

    for (const algorithm of ['sliding', 'gcra']) {
      it(`allows exactly ${LIMIT} of 60 concurrent requests with algorithm ${algorithm}, over all gateways and sidecars`, async () => {
        const token = stack.token(`${algorithm}-${randomUUID()}`);
        const calls = await Promise.all(Array.from({ length: 60 }, () => stack.call(`/${algorithm}/1`, token)));
        answered.push(...calls.map((c) => c.requestId));
        expect(calls.filter((c) => c.status === 200)).to.have.length(LIMIT);
        expect(calls.filter((c) => c.status === 429)).to.have.length(60 - LIMIT);
      });
    }

    it('applies a revocation and a ban through every gateway and sidecar within 1 s', async () => {
      const revoked = stack.token(`carol-${randomUUID()}`);
      const payload = jwt.decode(revoked) as { jti: string };
      for (const i of [1, 2, 3]) expect((await stack.call('/users/1', revoked, stack.gatewayUrl(i))).status).to.equal(200);
      const cli = await stack.admin(['revoke', '--jti', payload.jti, '--reason', 'scaled test']);
      expect(cli.code, cli.stderr).to.equal(0);
      const revokedAt = Date.now();
      // Each gateway takes the sidecars in turn: 4 calls per gateway reach both sidecars twice.
      await eventually(async () => {
        const statuses = await Promise.all([1, 2, 3].flatMap((i) => Array.from({ length: 4 }, () => stack.call('/users/1', revoked, stack.gatewayUrl(i)).then((c) => c.status))));
        return statuses.every((s) => s === 401) ? true : undefined;
      }, 5_000, 'the revocation on every sidecar');
      expect(Date.now() - revokedAt).to.be.below(1_000);

      const ban = await stack.admin(['bans', 'add', '--consumer', `e2e:dave-scaled`, '--reason', 'scaled test']);
      expect(ban.code, ban.stderr).to.equal(0);
      const bannedAt = Date.now();
      const dave = stack.token('dave-scaled');
      await eventually(async () => {
        const statuses = await Promise.all([1, 2, 3].flatMap((i) => Array.from({ length: 4 }, () => stack.call('/users/1', dave, stack.gatewayUrl(i)).then((c) => c.status))));
        return statuses.every((s) => s === 403) ? true : undefined;
      }, 5_000, 'the ban on every sidecar');
      expect(Date.now() - bannedAt).to.be.below(1_000);
    });

    it('loses only the checks in flight on a sidecar killed mid-traffic (each 503), then serves everything from the other', async () => {
      const token = stack.token(`erin-${randomUUID()}`);
      const statuses: number[] = [];
      let killed = false;
      let afterKill = 0;
      // 10 clients, 600 requests; the sidecar is killed once a third are answered.
      const client = async (): Promise<void> => {
        while (statuses.length < 600) {
          const call = await stack.call('/users/1', token);
          answered.push(call.requestId);
          statuses.push(call.status);
          if (killed) afterKill++;
          if (!killed && statuses.length >= 200) {
            killed = true;
            process.kill(stack.pids.get('auth-sidecar-2')!, 'SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: 10 }, client));
      const failed = statuses.filter((s) => s !== 200);
      expect(failed.every((s) => s === 503), failed.join(' ')).to.equal(true);
      // At most the checks in flight on that sidecar when it died: 10 clients, so at most 10 checks in flight.
      expect(failed.length).to.be.at.most(10);
      expect(afterKill).to.be.above(300);
      expect(statuses.slice(-100).every((s) => s === 200)).to.equal(true);
    });

    it('stores every answered request exactly once', async () => {
      const found = await eventually(async () => {
        const rows = await stored(answered);
        return rows.size === new Set(answered).size ? rows : undefined;
      }, 30_000, `the ${answered.length} answered requests stored`);
      const counts = [...found.values()].map((r) => r.n);
      expect(counts.every((n) => n === 1), `duplicated: ${counts.filter((n) => n !== 1).length}`).to.equal(true);
    });
  });
}

const front = HAS_NGINX ? 'nginx' : 'development forwarder';
scaledChecks(`npm run start:scaled (${front} in front)`, {});
scaledChecks(`npm run start:scaled on a 3-master Redis Cluster (REDIS_CLUSTER_NODES, ${front} in front)`, { cluster: true });

describe('npm run start:scaled with the development forwarder', function () {
  this.timeout(120_000);

  it('spreads connections over the gateways and answers through them', async () => {
    const stack = await ScaledStack.start({ devBalancer: true });
    try {
      expect(stack.output.join('')).to.include('dev-balancer (FOR DEVELOPMENT ONLY');
      const token = stack.token(`frank-${randomUUID()}`);
      // A connection each (the forwarder balances connections, not requests).
      const calls: { status: number; requestId: string }[] = [];
      for (let i = 0; i < 6; i++) {
        const requestId = `sc-${randomUUID()}`;
        const status = await new Promise<number>((resolve, reject) => {
          get(`${stack.url}/users/1`, { agent: false, headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': requestId } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        });
        calls.push({ status, requestId });
      }
      expect(calls.map((c) => c.status)).to.deep.equal([200, 200, 200, 200, 200, 200]);
      const db = new pg.Client({ connectionString: PG_URL });
      await db.connect();
      try {
        const gateways = await eventually(async () => {
          const { rows } = await db.query<{ gateway_id: string }>(`SELECT gateway_id FROM "${stack.env.AUDIT_DB_SCHEMA}".audit_events WHERE request_id = ANY($1)`, [calls.map((c) => c.requestId)]);
          return rows.length === 6 ? rows.map((r) => r.gateway_id) : undefined;
        }, 30_000, 'the 6 events stored');
        expect(new Set(gateways).size).to.equal(3);
      } finally {
        await db.end();
      }
    } finally {
      await stack.stop();
    }
  });
});
