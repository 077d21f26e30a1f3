import type { IncomingMessage } from 'node:http';
import type HttpProxy from 'http-proxy';

/**
 * Replaces http-proxy's `deleteLength` pass. For a DELETE or OPTIONS without Content-Length it
 * sets `Content-Length: 0` and deletes `Transfer-Encoding`, then pipes the body all the same: a
 * chunked body went upstream raw after a request declared empty, and the upstream read it as a
 * request of its own (request smuggling past every check of the gateway). The replacement gives
 * a body-less DELETE or OPTIONS its `Content-Length: 0` and leaves a chunked one chunked.
 */
export function keepRequestFraming(proxy: HttpProxy): void {
  const passes = (proxy as unknown as { webPasses: { name: string }[] }).webPasses;
  const at = passes.findIndex((pass) => pass.name === 'deleteLength');
  if (at === -1) throw new Error("http-proxy has no deleteLength pass to replace: check request framing of DELETE and OPTIONS bodies");
  passes[at] = function deleteLength(req: IncomingMessage): void {
    if ((req.method === 'DELETE' || req.method === 'OPTIONS') && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      req.headers['content-length'] = '0';
    }
  };
}
