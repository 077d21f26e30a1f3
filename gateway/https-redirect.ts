/**
 * Where a plain HTTP request is sent when the gateway serves HTTPS only: the same host (without
 * its port), the HTTPS port, the same path and query. The host was checked against
 * gateway.allowed_hosts before (when set); the answer is never cached (sendError says no-store).
 */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/** `pathAndQuery`: the normalized path and the query as received. undefined when the Host header is absent or not a host[:port]. */
export function httpsLocation(host: string | undefined, httpsPort: number, pathAndQuery: string): string | undefined {
  const name = host === undefined ? undefined : HOST.exec(host)?.[1];
  if (!name) return undefined;
  return `https://${name}${httpsPort === 443 ? '' : `:${httpsPort}`}${pathAndQuery}`;
}
