import { Agent, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { parse } from 'node:url';
import express from 'express';
import HttpProxy from 'http-proxy';
import type { GatewayConfig, RouteConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import type { SpoolStats } from './audit/disk-spool.js';
import type { AuditPublisher } from './audit/publisher.js';
import { createGatewayHandler, observeProxy } from './gateway-handler.js';
import { HostAllowList } from './host-allow-list.js';
import { keepRequestFraming } from './request-framing.js';
import { RouteTable } from './route-table.js';
import { ClientAddress } from './client-address.js';
import type { SidecarClient } from './sidecar-client.js';

/** Paths the gateway answers itself; config routes cannot claim them (see schema). */
export const OWN_PREFIX = '/__gateway/';

export interface GatewayDeps {
  config: GatewayConfig;
  sidecar: Pick<SidecarClient, 'check' | 'token'>;
  publisher: Pick<AuditPublisher, 'publish'>;
  gatewayId: string;
  logger: Logger;
  /** What `/__gateway/health` reports besides the process being up. */
  health?: () => Record<string, boolean>;
  /** The sidecars known and connected, reported by `/__gateway/health` (the check `sidecar` is: at least one connected). */
  sidecars?: () => { connected: number; known: number };
  /** The audit spool's contents, reported by `/__gateway/health` (stranded events are visible). */
  spool?: () => SpoolStats;
}

export interface Gateway {
  /** The server's request listener: proxied traffic goes straight to the gateway handler. */
  listener: RequestListener;
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
  keepRequestFraming(proxy);
  // One keep-alive pool per upstream, and each route's proxy options built once: http-proxy
  // would otherwise parse the target URL on every request.
  const agents = new Map<string, Agent>();
  const proxyOptions = new Map<RouteConfig, HttpProxy.ServerOptions>();
  for (const route of deps.config.routes) {
    if (route.upstream === undefined) continue;
    let agent = agents.get(route.upstream);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
      agents.set(route.upstream, agent);
    }
    // url.parse, not URL: http-proxy reads `path` to keep an upstream's path prefix.
    proxyOptions.set(route, { target: parse(route.upstream), agent, proxyTimeout: route.upstream_timeout_ms });
  }
  const handle = createGatewayHandler({
    routes: new RouteTable(deps.config.routes),
    sidecar: deps.sidecar,
    proxy,
    proxyOptionsFor: (route) => proxyOptions.get(route) ?? {},
    publisher: deps.publisher,
    gatewayId: deps.gatewayId,
    logger: deps.logger,
    hosts: HostAllowList.from(deps.config.gateway.allowed_hosts),
    clientAddress: new ClientAddress(deps.config.gateway.trusted_proxies, deps.config.gateway.forwarded_header),
  });
  const own = ownEndpoints(deps);
  return {
    listener(req: IncomingMessage, res: ServerResponse) {
      if (req.url?.startsWith(OWN_PREFIX)) own(req, res);
      else handle(req, res);
    },
    close() {
      for (const agent of agents.values()) agent.destroy();
      proxy.close();
    },
  };
}

function ownEndpoints(deps: GatewayDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
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
