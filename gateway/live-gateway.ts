/**
 * The gateway under a config that may change (common/config/live-config.ts): each config gets a
 * gateway of its own (route table, upstream pools, host and proxy rules), and the listeners call
 * whichever is current. A request runs start to end on the one it entered; the old one's upstream
 * sockets are closed once its longest upstream timeout has passed, so nothing in flight is cut.
 * WebSockets live on: an upgraded socket is no longer its agent's.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../common/config/schema.js';
import type { Gateway } from './app.js';

/** Beyond the longest upstream timeout, before an old gateway's sockets are closed. */
const RETIRE_MARGIN_MS = 10_000;

export class LiveGateway {
  private current: { gateway: Gateway; config: GatewayConfig };
  private readonly retiring = new Map<NodeJS.Timeout, Gateway>();

  /** `hash`: the config's (live-config.ts configHash), which the gateway writes into its audit events. */
  constructor(private readonly build: (config: GatewayConfig, hash: string) => Gateway, config: GatewayConfig, hash: string) {
    this.current = { gateway: build(config, hash), config };
  }

  readonly listener: RequestListener = (req: IncomingMessage, res: ServerResponse) => this.current.gateway.listener(req, res);

  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.current.gateway.upgrade(req, socket, head);

  /** New requests go to a gateway built for `config` from now on. */
  swap(config: GatewayConfig, hash: string): void {
    const old = this.current;
    this.current = { gateway: this.build(config, hash), config };
    const graceMs = Math.max(...old.config.routes.map((r) => r.upstream_timeout_ms)) + RETIRE_MARGIN_MS;
    const timer = setTimeout(() => {
      this.retiring.delete(timer);
      old.gateway.close();
    }, graceMs);
    timer.unref();
    this.retiring.set(timer, old.gateway);
  }

  close(): void {
    this.current.gateway.close();
    for (const [timer, gateway] of this.retiring) {
      clearTimeout(timer);
      gateway.close();
    }
    this.retiring.clear();
  }
}
