import type { IncomingHttpHeaders } from 'node:http';

/**
 * Headers `Connection` may not remove: the body's framing and the target. Node frames the upstream
 * body from Content-Length / Transfer-Encoding and sets Host itself, so naming them is ignored.
 */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/**
 * Removes the request's hop-by-hop headers (RFC 9110 §7.6.1) before it is proxied: `Connection`
 * and every header it names, `Keep-Alive`, `TE`, `Trailer` and `Upgrade` (`Proxy-*` go with the
 * gateway-owned headers, in the handler's one pass over the header names). http-proxy
 * copies them all. A client's `Connection: close` would close the pooled upstream connection, and
 * a `Trailer` on a request Node does not send chunked makes `http.request` throw outside any
 * handler, which ends the gateway process (http-proxy#1647).
 */
export function dropHopByHopHeaders(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    // The common values name no other header: no split, no allocation.
    if (connection !== 'keep-alive' && connection !== 'close') {
      for (const token of connection.split(',')) {
        const name = token.trim().toLowerCase();
        if (name !== '' && !FRAMING.has(name)) delete headers[name];
      }
    }
    delete headers.connection;
  }
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  if (headers.te !== undefined) delete headers.te;
  if (headers.trailer !== undefined) delete headers.trailer;
  if (headers.upgrade !== undefined) delete headers.upgrade;
}

/**
 * The upstream's `Connection` and `Keep-Alive` describe the gateway's pooled upstream connection,
 * not the client's: http-proxy would copy them to the client (keeping open a connection the client
 * asked to close). The client connection's persistence is the gateway server's own decision.
 */
export function setClientConnection(upstreamHeaders: IncomingHttpHeaders, keepAlive: boolean): void {
  if (upstreamHeaders['keep-alive'] !== undefined) delete upstreamHeaders['keep-alive'];
  upstreamHeaders.connection = keepAlive ? 'keep-alive' : 'close';
}
