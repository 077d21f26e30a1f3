import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import HttpProxy from 'http-proxy';
import type { GatewayConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import type { SpoolStats } from './audit/disk-spool.js';
import type { AuditPublisher } from './audit/publisher.js';
import { corsPolicies } from './cors/cors-policy.js';
import { createGatewayHandler } from './gateway-handler.js';
import { observeProxy } from './proxy-events.js';
import { ownAnswerHeaders } from './security-headers.js';
import { HostAllowList } from './host-allow-list.js';
import { keepRequestFraming } from './request-framing.js';
import { RouteTable } from './route-table.js';
import { ClientAddress } from './client-address.js';
import type { GatewayMetrics } from './metrics.js';
import type { SidecarClient } from './sidecar-client.js';
import type { SpanExporter } from '../common/tracing/span-exporter.js';
import { Upstreams } from './upstream/upstreams.js';
import { OpenSockets } from './websocket/open-sockets.js';
import { observeWebSockets, upgradeListener } from './websocket/websocket-proxy.js';

/** Paths the gateway answers itself; config routes cannot claim them (see schema). */
export const OWN_PREFIX = '/__gateway/';

export interface GatewayDeps {
  config: GatewayConfig;
  sidecar: Pick<SidecarClient, 'check' | 'token'>;
  publisher: Pick<AuditPublisher, 'publish'>;
  gatewayId: string;
  /** The hash of `config` (common/config/live-config.ts), written into every audit event. */
  configHash?: string;
  logger: Logger;
  /** What `/__gateway/health` reports besides the process being up. */
  health?: () => Record<string, boolean>;
  /** The sidecars known and connected, reported by `/__gateway/health` (the check `sidecar` is: at least one connected). */
  sidecars?: () => { connected: number; known: number };
  /** The audit spool's contents, reported by `/__gateway/health` (stranded events are visible). */
  spool?: () => SpoolStats;
  /** Counts and times every request (README: Metrics). */
  metrics?: GatewayMetrics;
  /** Set: plain HTTP requests are redirected (308) to this HTTPS port. */
  httpsPort?: number | undefined;
  /** The WebSockets open through this process, shared by the gateways of successive configs. */
  openSockets?: OpenSockets;
  /** The OpenTelemetry export (config `tracing.otlp`), shared by the gateways of successive configs. */
  spans?: SpanExporter;
}

export interface Gateway {
  /** The server's request listener: proxied traffic goes straight to the gateway handler. */
  listener: RequestListener;
  /** The server's 'upgrade' listener: WebSocket handshakes take the same path. */
  upgrade: ReturnType<typeof upgradeListener>;
  /** The WebSockets open through this gateway (SecurityWatch closes the ones refused later). */
  openSockets: OpenSockets;
  /** Frees the upstream keep-alive sockets. */
  close(): void;
}

/**
 * Builds the gateway without binding a port. Proxied requests skip express entirely (its router
 * costs ~5% of the gateway's CPU per request); express serves only the gateway's own endpoints.
 */
export function buildGateway(deps: GatewayDeps): Gateway {
  const proxy = HttpProxy.createProxyServer({ xfwd: false, ws: false });
  observeProxy(proxy);
  const openSockets = deps.openSockets ?? new OpenSockets();
  observeWebSockets(proxy, openSockets);
  keepRequestFraming(proxy);
  const upstreams = new Upstreams(deps.config);
  const handle = createGatewayHandler({
    routes: new RouteTable(deps.config.routes),
    sidecar: deps.sidecar,
    proxy,
    upstreams,
    publisher: deps.publisher,
    origin: { gatewayId: deps.gatewayId, configHash: deps.configHash ?? null },
    logger: deps.logger,
    hosts: HostAllowList.from(deps.config.gateway.allowed_hosts),
    clientAddress: new ClientAddress(deps.config.gateway.trusted_proxies, deps.config.gateway.forwarded_header),
    metrics: deps.metrics,
    httpsPort: deps.httpsPort,
    cors: corsPolicies(deps.config),
    sampleRatio: deps.config.tracing.sample_ratio,
    spans: deps.spans,
  });
  const own = ownEndpoints(deps);
  return {
    listener(req: IncomingMessage, res: ServerResponse) {
      if (req.url?.startsWith(OWN_PREFIX)) own(req, res);
      else handle(req, res);
    },
    upgrade: upgradeListener(handle),
    openSockets,
    close() {
      upstreams.close();
      proxy.close();
    },
  };
}

function ownEndpoints(deps: GatewayDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    res.set(ownAnswerHeaders(req));
    next();
  });
  app.get(`${OWN_PREFIX}health`, (_req, res) => {
    const checks = deps.health?.() ?? {};
    const ok = Object.values(checks).every(Boolean);
    const spool = deps.spool?.();
    const sidecars = deps.sidecars?.();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', gateway_id: deps.gatewayId, checks, ...(sidecars && { sidecars }), ...(spool && { spool }) });
  });
  app.use((_req, res) => {
    res.status(404).json({ error: 'no such gateway endpoint', reason: 'no_route' });
  });
  return app;
}
