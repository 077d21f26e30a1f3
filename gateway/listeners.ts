/**
 * The gateway's traffic listeners: plain HTTP on GATEWAY_PORT, and with `gateway.tls` HTTPS on
 * GATEWAY_HTTPS_PORT (TLS 1.2 at least), whose certificate is re-read when its files change.
 * With `plain_http: off` no plain listener is opened; with `redirect` it answers 308 (the handler
 * does, so the answer is audited like every other).
 */
import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { GatewayConfig } from '../common/config/schema.js';
import type { Logger } from '../common/logger.js';
import { reloadingHttpsServer } from '../common/https-server.js';

export interface ListenerSpec {
  config: GatewayConfig;
  configFile: string;
  host: string;
  httpPort: number;
  httpsPort: number;
  listener: RequestListener;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  clientError: (err: NodeJS.ErrnoException, socket: Duplex) => void;
  logger: Logger;
}

export interface Listeners {
  servers: Server[];
  /** The bound ports (undefined: that listener is off). */
  ports: { http: number | undefined; https: number | undefined };
  /** Stops watching the certificate files. */
  unwatch(): void;
}

export async function openListeners(spec: ListenerSpec): Promise<Listeners> {
  const settings = spec.config.gateway;
  // Tight by default: a client sending a header byte a second is closed within headers_timeout_ms
  // plus one check, not Node's 60 s plus a 30 s check.
  const options: ServerOptions = {
    headersTimeout: settings.headers_timeout_ms,
    requestTimeout: settings.request_timeout_ms,
    keepAliveTimeout: settings.keep_alive_timeout_ms,
    connectionsCheckingInterval: settings.connections_check_ms,
    // Node would answer 400 itself, outside the audit: the handler refuses it (host_missing).
    requireHostHeader: false,
  };
  const tls = settings.tls;
  const servers: Server[] = [];
  const ports: Listeners['ports'] = { http: undefined, https: undefined };
  let unwatch = (): void => undefined;
  if (!tls || tls.plain_http !== 'off') {
    const plain = createServer(options, spec.listener);
    ports.http = await listen(plain, spec, spec.httpPort);
    servers.push(plain);
  }
  if (tls) {
    const secure = reloadingHttpsServer(options, spec.listener, tls, spec.configFile, 'gateway.tls', spec.logger);
    unwatch = secure.unwatch;
    ports.https = await listen(secure.server, spec, spec.httpsPort);
    servers.push(secure.server);
  }
  return { servers, ports, unwatch };
}

function listen(server: Server, spec: ListenerSpec, port: number): Promise<number> {
  server.on('clientError', spec.clientError);
  server.on('upgrade', spec.upgrade);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, spec.host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
