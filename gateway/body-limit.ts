import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RequestRecord } from './audit/audit-record.js';
import { sendError } from './respond.js';

/** Sent with a 413: the body was not read, so the connection cannot carry another request. */
export const CLOSE_CONNECTION: Record<string, string> = Object.freeze({ Connection: 'close' }) as Record<string, string>;

/**
 * The detail of a body refused from its headers alone, before the sidecar is asked and before a
 * byte of it is read: a Content-Length over the route's `max_body_bytes`, or any body on a route
 * whose limit is 0. Undefined when the body may be proxied.
 */
export function declaredBodyRefusal(headers: IncomingHttpHeaders, maxBytes: number): 'content_length' | 'body_not_accepted' | undefined {
  const length = headers['content-length'];
  if (length !== undefined && Number(length) > maxBytes) return maxBytes === 0 ? 'body_not_accepted' : 'content_length';
  if (maxBytes === 0 && headers['transfer-encoding'] !== undefined) return 'body_not_accepted';
  return undefined;
}

/**
 * Counts a chunked body while it is proxied (a Content-Length body is bounded by its declared
 * length, checked before). Past `maxBytes` the body stops flowing upstream; the client gets 413
 * payload_too_large if nothing was answered yet, and then its connection and the upstream request
 * are ended (destroying the request aborts it; http-proxy aborts the upstream request on that).
 * Call after `proxy.web`, in the same tick, so no chunk passes uncounted.
 */
export function limitChunkedBody(req: IncomingMessage, res: ServerResponse, record: RequestRecord, maxBytes: number): void {
  if (req.headers['transfer-encoding'] === undefined) return;
  let received = 0;
  const count = (data: Buffer): void => {
    received += data.length;
    if (received <= maxBytes) return;
    req.removeListener('data', count);
    req.unpipe();
    record.reason = 'payload_too_large';
    record.detail = 'body_too_large';
    if (res.headersSent) {
      req.destroy();
      return;
    }
    record.decision = 'deny';
    res.once('finish', () => req.destroy());
    sendError(res, 'payload_too_large', record.requestId, CLOSE_CONNECTION);
  };
  req.on('data', count);
}
