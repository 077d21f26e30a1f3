/**
 * A route with `serve: token_endpoints`: once the sidecar's check let the request through (bans,
 * rate limits), its body (at most MAX_TOKEN_BODY_BYTES) and the few headers the endpoints read
 * are handed to the sidecar's Token call, and its answer is sent as it is. The audit event takes
 * the answer's reason, detail and identity (who logged in, refreshed or logged out): a refused
 * login is a denied request. The body itself, which holds the password, is never recorded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isReason } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { TokenResponse__Output } from '../common/proto.js';
import type { RequestRecord } from './audit/audit-record.js';
import { CLOSE_CONNECTION } from './body-limit.js';
import { sendError } from './respond.js';
import type { SidecarClient } from './sidecar-client.js';

/** The largest body a token endpoint reads: a login is well under 1 KiB. */
export const MAX_TOKEN_BODY_BYTES = 8 * 1024;

/** The request headers the endpoints read; no other reaches the sidecar. */
const FORWARDED_HEADERS = ['authorization', 'cookie', 'content-type'] as const;

/** Headers of the sidecar's answer the client may see. */
const ANSWER_HEADERS = new Set(['content-type', 'cache-control', 'pragma', 'set-cookie', 'retry-after', 'allow', 'www-authenticate']);

export interface TokenRelayDeps {
  sidecar: Pick<SidecarClient, 'token'>;
  logger: Logger;
}

export function relayToTokenEndpoints(deps: TokenRelayDeps, req: IncomingMessage, res: ServerResponse, record: RequestRecord, path: string): void {
  readBody(req, MAX_TOKEN_BODY_BYTES).then(
    (body) => {
      if (body === undefined) {
        record.decision = 'deny';
        record.reason = 'payload_too_large';
        record.detail = 'body_too_large';
        return sendError(res, 'payload_too_large', record.requestId, CLOSE_CONNECTION);
      }
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      deps.sidecar
        .token({ request_id: record.requestId, method: req.method ?? '', path, client_ip: record.clientIp, headers, body })
        .then(
          (answer) => send(res, record, answer),
          (err: Error) => {
            deps.logger.warn('token endpoint call failed', { request_id: record.requestId, error: err.message });
            record.decision = 'deny';
            record.reason = 'auth_unavailable';
            record.detail = 'token_call_failed';
            sendError(res, 'auth_unavailable', record.requestId);
          },
        );
    },
    () => res.destroy(), // the client went away mid-body: nothing to answer
  );
}

function send(res: ServerResponse, record: RequestRecord, answer: TokenResponse__Output): void {
  const identity = answer.identity;
  if (identity) {
    record.sub = identity.sub || null;
    record.consumer = identity.consumer || null;
    record.jti = identity.jti || null;
    record.tokenIat = identity.iat;
  }
  record.detail = answer.detail || null;
  if (answer.reason !== '') {
    record.decision = 'deny';
    record.reason = isReason(answer.reason) ? answer.reason : 'auth_unavailable';
  } else {
    record.decision = 'allow';
  }
  if (res.headersSent) return void res.destroy();
  for (const [name, value] of Object.entries(answer.headers)) if (ANSWER_HEADERS.has(name)) res.setHeader(name, value);
  res.writeHead(answer.http_status, { 'Content-Length': answer.body.length });
  res.end(answer.body);
}

/** The whole body, or undefined past `maxBytes`; rejects when the request breaks off. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.pause();
        return resolve(undefined);
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
}
