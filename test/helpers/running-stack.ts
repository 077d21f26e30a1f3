/**
 * The built product running for an end-to-end test: a private redis-server, the sidecar, the
 * audit worker on the machine's PostgreSQL (a schema of its own), the gateway and a recording
 * upstream. `config` receives the upstream's URL and returns the YAML of GATEWAY_CONFIG.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import type { AuditEvent } from '../../common/audit-event.js';
import { eventually, freePorts } from './net.js';
import { dropSchema, PG_URL, uniqueSchema } from './postgres.js';
import { ProductProcess, runCli } from './processes.js';
import { RecordingUpstream } from './recording-upstream.js';
import { TestRedis } from './redis-server.js';

export const STACK_SECRET = 'stack-secret-that-is-long-enough-0123456789';
export const STACK_ISSUER = { name: 'e2e', iss: 'e2e-issuer', audience: 'api' } as const;
/** The stack's HMAC issuer as a YAML flow mapping, for the `issuers:` list of a test's config. */
export const STACK_ISSUER_YAML = `{ name: ${STACK_ISSUER.name}, iss: ${STACK_ISSUER.iss}, audience: ${STACK_ISSUER.audience}, algorithms: [HS256], secret_env: E2E_SECRET }`;
/** Encrypts the signing keys of a stack whose config has token_issuing. */
export const STACK_SIGNING_SECRET = 'stack-signing-key-secret-0123456789abcdef';
export const STACK_ADMIN_TOKEN = 'stack-admin-token-0123456789';
const ADMIN_TOKEN = STACK_ADMIN_TOKEN;

export interface StackOptions {
  /** The worker's PostgreSQL (default: the machine's, PG_URL). */
  pgUrl?: string;
  /** Redis keeps an fsynced append-only file, so a restarted Redis has its data (not its script cache). */
  redisAof?: boolean;
  /** Added to the audit worker's environment (e.g. the alert webhook's secret). */
  workerEnv?: Record<string, string>;
  /** How every process and CLI reaches the stack's Redis (default REDIS_URL); e.g. through a sentinel. */
  redisEnv?: (redis: TestRedis) => Promise<Record<string, string>>;
}

interface ProcessSpec {
  entry: string;
  env: Record<string, string>;
  port: number;
}

export class RunningStack {
  readonly processes: ProductProcess[] = [];
  private readonly specs = new Map<string, ProcessSpec>();
  private constructor(
    readonly redis: TestRedis,
    readonly upstream: RecordingUpstream,
    readonly dir: string,
    readonly schema: string,
    readonly env: Record<string, string>,
    readonly pgUrl: string,
  ) {}

  gatewayUrl = '';
  auditUrl = '';
  /** host:port of the sidecar's gRPC port. */
  sidecarAddress = '';
  /** Each process's status port (/healthz, /readyz, /metrics). */
  statusUrl = { gateway: '', sidecar: '', worker: '' };

  /** `gatewayEnv` adds to the gateway's environment (e.g. GATEWAY_HOST). */
  static async start(config: (upstreamUrl: string) => string, gatewayEnv: Record<string, string> = {}, options: StackOptions = {}): Promise<RunningStack> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-stack-'));
    const redis = await TestRedis.start(options.redisAof ? { aofDir: dir } : {});
    const upstream = await RecordingUpstream.start();
    const pgUrl = options.pgUrl ?? PG_URL;
    const schema = uniqueSchema('stack');
    writeFileSync(join(dir, 'gateway.yml'), config(upstream.url));
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      GATEWAY_CONFIG: join(dir, 'gateway.yml'),
      ...(options.redisEnv ? await options.redisEnv(redis) : { REDIS_URL: redis.url }),
      REDIS_PREFIX: `st${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'warn',
      E2E_SECRET: STACK_SECRET,
      SIGNING_KEY_SECRET: STACK_SIGNING_SECRET,
    };
    const stack = new RunningStack(redis, upstream, dir, schema, env, pgUrl);
    try {
      const [gatewayPort, sidecarPort, auditPort, gatewayStatus, sidecarStatus, workerStatus] = (await freePorts(6)) as [number, number, number, number, number, number];
      const status = { gateway: gatewayStatus, sidecar: sidecarStatus, worker: workerStatus };
      await stack.spawn('auth-sidecar', { entry: 'auth-sidecar/main.js', env: { ...env, SIDECAR_PORT: String(sidecarPort), SIDECAR_STATUS_PORT: String(status.sidecar) }, port: sidecarPort });
      await stack.spawn('audit-worker', {
        entry: 'audit-worker/main.js',
        env: { ...env, AUDIT_PORT: String(auditPort), WORKER_STATUS_PORT: String(status.worker), AUDIT_DB_URL: pgUrl, AUDIT_DB_SCHEMA: schema, ADMIN_TOKEN, ...options.workerEnv },
        port: auditPort,
      });
      await stack.spawn('gateway', {
        entry: 'gateway/main.js',
        env: { ...env, GATEWAY_PORT: String(gatewayPort), GATEWAY_STATUS_PORT: String(status.gateway), SIDECAR_ADDR: `127.0.0.1:${sidecarPort}`, AUDIT_SPOOL_DIR: join(dir, 'spool'), ...gatewayEnv },
        port: gatewayPort,
      });
      stack.gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
      stack.auditUrl = `http://127.0.0.1:${auditPort}`;
      stack.sidecarAddress = `127.0.0.1:${sidecarPort}`;
      stack.statusUrl = { gateway: `http://127.0.0.1:${status.gateway}`, sidecar: `http://127.0.0.1:${status.sidecar}`, worker: `http://127.0.0.1:${status.worker}` };
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  private async spawn(name: string, spec: ProcessSpec): Promise<ProductProcess> {
    this.specs.set(name, spec);
    const started = await ProductProcess.start(name, spec.entry, spec.env, spec.port);
    const index = this.processes.findIndex((p) => p.name === name);
    if (index >= 0) this.processes[index] = started;
    else this.processes.push(started);
    return started;
  }

  /** The running (or last) process of that name: 'auth-sidecar', 'audit-worker' or 'gateway'. */
  process(name: string): ProductProcess {
    const found = this.processes.find((p) => p.name === name);
    if (!found) throw new Error(`no process ${name}`);
    return found;
  }

  /** Starts a process that was stopped or killed again, same port and environment. */
  async restart(name: string): Promise<ProductProcess> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no process ${name}`);
    if (this.process(name).running) throw new Error(`${name} is still running`);
    return this.spawn(name, spec);
  }

  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await p.kill();
    await this.upstream.close();
    await this.redis.stop();
    await dropSchema(this.schema, this.pgUrl);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines of every process, for a failed test's message. */
  output(): string {
    return this.processes.map((p) => `--- ${p.name}\n${p.output.join('').slice(-4000)}`).join('\n');
  }

  /** A token of the stack's HMAC issuer; `claims` override sub, groups and jti. */
  token(claims: Record<string, unknown> = {}, options: jwt.SignOptions = {}): string {
    return jwt.sign({ sub: 'alice', groups: ['customers'], jti: randomUUID(), ...claims }, STACK_SECRET, {
      algorithm: 'HS256',
      issuer: STACK_ISSUER.iss,
      audience: STACK_ISSUER.audience,
      expiresIn: 300,
      ...options,
    });
  }

  /** One request through the gateway with a fresh request id; the body is read. */
  async call(path: string, headers: Record<string, string> = {}, baseUrl = this.gatewayUrl, method = 'GET'): Promise<{ status: number; requestId: string; ms: number; headers: Headers }> {
    const requestId = `st-${randomUUID()}`;
    const started = performance.now();
    const res = await fetch(baseUrl + path, { method, headers: { ...headers, 'X-Request-Id': requestId } });
    await res.arrayBuffer();
    return { status: res.status, requestId, ms: performance.now() - started, headers: res.headers };
  }

  /** The stored audit event of a request, once the worker has it. */
  async auditEvent(requestId: string, timeoutMs = 20_000): Promise<AuditEvent> {
    const events = await eventually(async () => {
      const res = await fetch(`${this.auditUrl}/v1/events?request_id=${requestId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.json()) as { events: AuditEvent[] };
      return body.events.length > 0 ? body.events : undefined;
    }, timeoutMs, `the audit event of ${requestId}`);
    if (events.length !== 1) throw new Error(`${events.length} audit events for ${requestId}`);
    return events[0]!;
  }

  /** The stored audit events matching `filter` (query API parameters), once `done` accepts them. */
  async auditEvents(filter: Record<string, string>, done: (events: AuditEvent[]) => boolean, timeoutMs = 20_000): Promise<AuditEvent[]> {
    return eventually(async () => {
      const res = await fetch(`${this.auditUrl}/v1/events?${new URLSearchParams(filter)}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.json()) as { events: AuditEvent[] };
      return done(body.events) ? body.events : undefined;
    }, timeoutMs, `audit events ${JSON.stringify(filter)}`);
  }

  /** Runs the built admin CLI against this stack's Redis and config; `input` goes to its stdin. */
  admin(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli('cli/admin.js', args, this.env, input);
  }
}
