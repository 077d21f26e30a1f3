/**
 * The proxy's events, wired to the request records: the upstream's status and answer time, its
 * timeouts, and what of the upstream's answer headers the client may see.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type HttpProxy from 'http-proxy';
import { recordOf } from './audit/audit-record.js';
import { setClientConnection } from './hop-by-hop.js';
import { hideUpstreamIdentity } from './upstream-identity.js';

/**
 * On a route with a CORS policy the gateway's word is the only one: the upstream's own
 * Access-Control-* headers are dropped (an upstream answering `*` must not widen the policy), and
 * its Vary keeps Origin.
 */
function keepGatewayCors(headers: IncomingHttpHeaders): void {
  for (const name of Object.keys(headers)) if (name.startsWith('access-control-')) delete headers[name];
  const vary = headers.vary;
  if (vary !== undefined && !/(^|,)\s*(origin|\*)\s*(,|$)/i.test(vary)) headers.vary = `${vary}, Origin`;
  else if (vary === undefined) headers.vary = 'Origin';
}

/** Wires the proxy's events to the request records: upstream status and timeouts. */
export function observeProxy(proxy: HttpProxy): void {
  proxy.on('proxyReq', (proxyReq, req) => {
    const record = recordOf(req);
    if (!record) return;
    record.upstreamRequest = proxyReq;
    // http-proxy reports a `proxyTimeout` as ECONNRESET; the socket's timeout event tells them apart.
    proxyReq.once('timeout', () => (record.upstreamTimedOut = true));
  });
  proxy.on('proxyRes', (proxyRes, req, res) => {
    const record = recordOf(req);
    if (record) {
      record.upstreamStatus = proxyRes.statusCode ?? null;
      record.upstreamMs = performance.now() - record.upstreamSentMs;
      record.upstream?.pool.answered(record.upstream.target, proxyRes.statusCode ?? 0);
    }
    hideUpstreamIdentity(proxyRes.headers);
    if (record?.cors) keepGatewayCors(proxyRes.headers);
    setClientConnection(proxyRes.headers, res.shouldKeepAlive);
  });
}
