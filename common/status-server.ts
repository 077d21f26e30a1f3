/**
 * Every process's status port, apart from its traffic: `GET /healthz` (the process is alive),
 * `GET /readyz` (its dependencies answer, and it is not draining; 503 otherwise, naming the
 * checks) and `GET /metrics` (Prometheus text). Bound to STATUS_HOST (loopback by default):
 * metrics name routes and volumes, so they are not exposed unless the operator says so.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** Each dependency's state: true when it answers. */
export type ReadinessChecks = Record<string, boolean>;

export interface StatusOptions {
  host: string;
  port: number;
  registry: Registry;
  /** The dependencies' states, now; may ask them (bounded by READY_TIMEOUT_MS). */
  readiness: () => ReadinessChecks | Promise<ReadinessChecks>;
  /** More to show on /readyz (e.g. the config hash). */
  details?: () => Record<string, unknown>;
  logger: Logger;
}

/** A readiness probe that takes longer than this counts as not ready. */
const READY_TIMEOUT_MS = 1_000;

export class StatusServer {
  private draining = false;

  private constructor(
    private readonly server: Server,
    private readonly options: StatusOptions,
  ) {}

  static async start(options: StatusOptions): Promise<StatusServer> {
    const server = createServer();
    const status = new StatusServer(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      status.answer(req, res).catch((err: Error) => {
        options.logger.warn('status request failed', { code: 'status_failed', error: err.message });
        if (!res.headersSent) send(res, 500, { status: 'error' });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return status;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** From now on /readyz answers 503 draining: a balancer stops sending before the listener closes. */
  drain(): void {
    this.draining = true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method_not_allowed' }, { Allow: 'GET, HEAD' });
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') return send(res, 200, { status: 'alive' });
    if (path === '/readyz') return this.ready(res);
    if (path === '/metrics') {
      const body = await this.options.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.options.registry.contentType, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      return void res.end(body);
    }
    send(res, 404, { status: 'not_found', endpoints: ['/healthz', '/readyz', '/metrics'] });
  }

  private async ready(res: ServerResponse): Promise<void> {
    const details = this.options.details?.() ?? {};
    if (this.draining) return send(res, 503, { status: 'draining', ...details });
    const checks = await withTimeout(Promise.resolve(this.options.readiness()), READY_TIMEOUT_MS).catch((): ReadinessChecks => ({ readiness_probe: false }));
    const ok = Object.values(checks).every(Boolean);
    send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not_ready', checks, ...details });
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(text);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
