import type { IncomingHttpHeaders } from 'node:http';

/**
 * Removes what an upstream says about its software (`Server`, `X-Powered-By`) from its response
 * before the gateway copies it to the client: it names versions to attack. The gateway's own
 * answers carry neither (Node sets no `Server`; express's `x-powered-by` is disabled).
 */
export function hideUpstreamIdentity(headers: IncomingHttpHeaders): void {
  if (headers.server !== undefined) delete headers.server;
  if (headers['x-powered-by'] !== undefined) delete headers['x-powered-by'];
}
