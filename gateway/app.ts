import { Agent } from 'node:http';
import express from 'express';
import HttpProxy from 'http-proxy';
import type { GatewayConfig, RouteConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import type { AuditPublisher } from './audit/publisher.js';
import { createGatewayHandler, observeProxy } from './gateway-handler.js';
import { RouteTable } from './route-table.js';
import type { SidecarClient } from './sidecar-client.js';

export interface GatewayDeps {
  config: GatewayConfig;
  sidecar: Pick<SidecarClient, 'check'>;
  publisher: Pick<AuditPublisher, 'publish'>;
  gatewayId: string;
  logger: Logger;
}

export interface Gateway {
  app: express.Express;
  /** Frees the upstream keep-alive sockets. */
  close(): void;
}

/** Builds the gateway's express app without binding a port. */
export function buildGateway(deps: GatewayDeps): Gateway {
  const proxy = HttpProxy.createProxyServer({ xfwd: false, ws: false });
  observeProxy(proxy);
  const agents = new Map<string, Agent>();
  const agentFor = (route: RouteConfig): Agent => {
    let agent = agents.get(route.upstream);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
      agents.set(route.upstream, agent);
    }
    return agent;
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(
    createGatewayHandler({
      routes: new RouteTable(deps.config.routes),
      sidecar: deps.sidecar,
      proxy,
      agentFor,
      publisher: deps.publisher,
      gatewayId: deps.gatewayId,
      logger: deps.logger,
    }),
  );
  return {
    app,
    close() {
      for (const agent of agents.values()) agent.destroy();
      proxy.close();
    },
  };
}
