/**
 * Requests Node's parser refuses never reach the handler: malformed ones, Content-Length with
 * Transfer-Encoding (a smuggling attempt), headers over the size limit or slower than
 * headers_timeout_ms. They are answered here, as Node would (400, 431, 408, connection closed),
 * but with the gateway's JSON error body and a request id, and audited like every refused request.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuditEvent } from '../common/audit-event.js';
import { REASONS, type Reason } from '../common/errors.js';
import { refusedRequestEvent, type EventOrigin } from './audit/audit-record.js';
import { peerAddress } from './peer-address.js';

function reasonOf(code: string | undefined): Reason {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  return 'bad_request';
}

type HttpSocket = Socket & { _httpMessage?: { headersSent?: boolean } | null; [ANSWERED]?: true };
const ANSWERED = Symbol('gateway.clientErrorAnswered');
/** How long the answer may take to reach a client that does not read it. */
const FLUSH_MS = 1_000;

/** `origin`: the gateway and its active config's hash, asked per refusal (the config may change). */
export function answerClientError(publish: (event: AuditEvent) => void, origin: () => EventOrigin) {
  return (err: NodeJS.ErrnoException, duplex: Duplex): void => {
    const socket = duplex as HttpSocket;
    // The client went away (nothing was asked), or this connection's error was answered already
    // and the parser reports its end: nothing to answer or audit.
    if (err.code === 'ECONNRESET' || socket[ANSWERED] || !socket.writable) return void socket.destroy();
    socket[ANSWERED] = true;
    const reason = reasonOf(err.code);
    const requestId = randomUUID();
    const { status, message } = REASONS[reason];
    // A response already on its way cannot be followed by another on this connection.
    const canAnswer = !socket._httpMessage?.headersSent;
    let bytesOut = 0;
    if (canAnswer) {
      const body = JSON.stringify({ error: message, reason, request_id: requestId });
      const answer =
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Cache-Control: no-store\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`;
      bytesOut = Buffer.byteLength(answer);
      // Closed once the answer is written (the parser is gone: no other timeout applies any more).
      const stop = setTimeout(() => socket.destroy(), FLUSH_MS);
      socket.end(answer, () => {
        clearTimeout(stop);
        socket.destroy();
      });
    } else socket.destroy();
    const detail = (err.code ?? 'parse_error').toLowerCase();
    publish(refusedRequestEvent(requestId, peerAddress(socket), canAnswer ? status : 0, reason, detail, bytesOut, origin()));
  };
}
