/**
 * The gateway's auth sidecars: one SidecarClient (its own channel and CheckStream) per sidecar
 * address, checks spread round robin over those connected. A gRPC stream is pinned to one
 * server, so spreading needs a stream per sidecar rather than a balancing policy on one channel.
 *
 * A sidecar that goes away costs only the checks in flight on its stream (each answered 503 by
 * the gateway); its channel leaves the connected set at once and new checks go to the others.
 * With a dns target the addresses are looked up every `refreshMs`: new sidecars are added, and
 * those gone from the name are taken out of the rotation and closed once their in-flight checks
 * have settled. When none is connected, checks go to the known ones in turn (they wait for the
 * connection up to their deadline, as with one sidecar).
 */
import * as grpc from '@grpc/grpc-js';
import type { CheckRequest, CheckResponse__Output, TokenRequest, TokenResponse__Output } from '../common/proto.js';
import type { Logger } from '../common/logger.js';
import { resolveSidecars, type SidecarTarget } from '../common/sidecar-target.js';
import { CheckFailedError, SidecarClient, type SidecarClientOptions } from './sidecar-client.js';

export interface SidecarPoolOptions extends SidecarClientOptions {
  /** How often a dns target is looked up again. */
  refreshMs?: number;
  /** Looks the target up (tests stand in for DNS). */
  resolve?: (target: SidecarTarget) => Promise<string[]>;
}

export interface SidecarPoolStatus {
  /** Sidecars with a connected channel. */
  connected: number;
  /** Sidecars the gateway knows (resolved addresses). */
  known: number;
}

export class SidecarPool {
  private readonly clients = new Map<string, SidecarClient>();
  /** The connected clients, in the order they were added; checks take them in turn. */
  private connected: SidecarClient[] = [];
  private all: SidecarClient[] = [];
  private turn = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly target: SidecarTarget,
    private readonly deadlineMs: number,
    private readonly logger: Logger,
    private readonly options: SidecarPoolOptions,
  ) {}

  /** Resolves the target once (a dns name that does not resolve yet is retried on the timer) and starts watching it. */
  static async open(target: SidecarTarget, deadlineMs: number, logger: Logger, options: SidecarPoolOptions = {}): Promise<SidecarPool> {
    const pool = new SidecarPool(target, deadlineMs, logger, options);
    await pool.refresh();
    if (target.kind === 'dns') {
      const every = options.refreshMs ?? 5_000;
      const tick = (): void => {
        pool.timer = setTimeout(() => void pool.refresh().finally(() => !pool.closed && tick()), every);
        pool.timer.unref();
      };
      tick();
    }
    return pool;
  }

  check(request: CheckRequest): Promise<CheckResponse__Output> {
    const client = this.next();
    return client ? client.check(request) : Promise.reject(new CheckFailedError(grpc.status.UNAVAILABLE, 'no sidecar address resolved yet'));
  }

  token(request: TokenRequest): Promise<TokenResponse__Output> {
    const client = this.next();
    return client ? client.token(request) : Promise.reject(new CheckFailedError(grpc.status.UNAVAILABLE, 'no sidecar address resolved yet'));
  }

  /** The next sidecar in turn: a connected one, else any known one. */
  private next(): SidecarClient | undefined {
    const from = this.connected.length > 0 ? this.connected : this.all;
    if (from.length === 0) return undefined;
    this.turn = (this.turn + 1) % from.length;
    return from[this.turn];
  }

  /** True while at least one sidecar is connected. */
  isConnected(): boolean {
    return this.connected.length > 0;
  }

  status(): SidecarPoolStatus {
    return { connected: this.connected.length, known: this.all.length };
  }

  /** Looks the target up again: adds the new addresses, retires those gone. Never throws. */
  async refresh(): Promise<void> {
    let addresses: string[];
    try {
      addresses = await (this.options.resolve ?? resolveSidecars)(this.target);
    } catch (err) {
      this.logger.warn('sidecar addresses not resolved, keeping the known ones', { code: 'sidecar_resolve_failed', error: (err as Error).message });
      return;
    }
    if (this.closed) return;
    const wanted = new Set(addresses);
    for (const address of addresses) {
      if (this.clients.has(address)) continue;
      const client = new SidecarClient(address, this.deadlineMs, { ...this.options, onConnectivity: () => this.recount() });
      this.clients.set(address, client);
      this.logger.info('sidecar added', { code: 'sidecar_added', address });
    }
    for (const [address, client] of this.clients) {
      if (wanted.has(address)) continue;
      this.clients.delete(address);
      this.logger.info('sidecar gone from the name, closing once its checks settle', { code: 'sidecar_removed', address });
      client.closeWhenSettled();
    }
    this.recount();
  }

  private recount(): void {
    this.all = [...this.clients.values()];
    this.connected = this.all.filter((c) => c.isConnected());
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    this.recount();
  }
}
