import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from './net.js';
import { dropSchema, PG_URL, uniqueSchema } from './postgres.js';
import { ProductProcess } from './processes.js';
import { TestRedis } from './redis-server.js';

export const STACK_SECRET = 'stack-secret-that-is-long-enough-0123456789';
export const STACK_ADMIN_TOKEN = 'stack-admin-token-0123456789';
/** The issuer line every stack config starts with; tokens are signed with STACK_SECRET. */
export const STACK_ISSUER = '{ name: e2e, iss: e2e-issuer, audience: api, algorithms: [HS256], secret_env: E2E_SECRET }';

/**
 * The built product on a private redis-server and a fresh PostgreSQL schema: one sidecar, one
 * worker and one gateway started with `configYaml`. `stop()` undoes all of it.
 */
export class TestStack {
  readonly processes: ProductProcess[] = [];
  gatewayUrl = '';
  auditUrl = '';
  private constructor(readonly redis: TestRedis, readonly dir: string, readonly schema: string) {}

  static async start(configYaml: string): Promise<TestStack> {
    const stack = new TestStack(await TestRedis.start(), mkdtempSync(join(tmpdir(), 'gw-stack-')), uniqueSchema('stack'));
    try {
      await stack.boot(configYaml);
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  private async boot(configYaml: string): Promise<void> {
    writeFileSync(join(this.dir, 'gateway.yml'), configYaml);
    const [gatewayPort, sidecarPort, auditPort] = [await freePort(), await freePort(), await freePort()];
    const env = {
      NODE_ENV: 'test',
      GATEWAY_CONFIG: join(this.dir, 'gateway.yml'),
      REDIS_URL: this.redis.url,
      REDIS_PREFIX: `st${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'warn',
    };
    this.processes.push(await ProductProcess.start('auth-sidecar', 'auth-sidecar/main.js', { ...env, SIDECAR_PORT: String(sidecarPort), E2E_SECRET: STACK_SECRET }, sidecarPort));
    this.processes.push(
      await ProductProcess.start(
        'audit-worker',
        'audit-worker/main.js',
        { ...env, AUDIT_PORT: String(auditPort), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: this.schema, ADMIN_TOKEN: STACK_ADMIN_TOKEN },
        auditPort,
      ),
    );
    this.processes.push(
      await ProductProcess.start(
        'gateway',
        'gateway/main.js',
        { ...env, GATEWAY_PORT: String(gatewayPort), SIDECAR_ADDR: `127.0.0.1:${sidecarPort}`, AUDIT_SPOOL_DIR: join(this.dir, 'spool') },
        gatewayPort,
      ),
    );
    this.gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    this.auditUrl = `http://127.0.0.1:${auditPort}`;
  }

  /** The stored audit events of one request id, once there is at least one. */
  async eventsOf<T = Record<string, unknown>>(requestId: string): Promise<T[]> {
    return eventually(async () => {
      const res = await fetch(`${this.auditUrl}/v1/events?request_id=${encodeURIComponent(requestId)}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
      const body = (await res.json()) as { events: T[] };
      return body.events.length > 0 ? body.events : undefined;
    }, 15_000, `the audit event of ${requestId}`);
  }

  /** The processes' last output, for a failed test's message. */
  output(): string {
    return this.processes.map((p) => `--- ${p.name}\n${p.output.join('').slice(-4000)}`).join('\n');
  }

  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.kill();
    await this.redis.stop();
    await dropSchema(this.schema);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
