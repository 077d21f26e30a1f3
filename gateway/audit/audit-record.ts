import { randomUUID } from 'node:crypto';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent, RateLimitState } from '../../common/audit-event.js';
import type { Target, UpstreamPool } from '../upstream/pool.js';
import { webSocketTraffic } from '../websocket/upgrade-request.js';
import { fitToLimits } from './field-limits.js';

/** What the gateway learns about a request while serving it; becomes its audit event. */
export interface RequestRecord {
  requestId: string;
  startedAt: number;
  /** performance.now() at the start: a double, where hrtime.bigint() allocates. */
  startedMs: number;
  /** The socket's bytesWritten when this response got the socket (-1 until then: pipelining). */
  bytesBefore: number;
  /** The socket's bytesWritten once this response was all written (-1 until then, or if it never was). */
  bytesAfter: number;
  clientIp: string;
  path: string;
  route: string | null;
  decision: AuditEvent['decision'];
  reason: string | null;
  detail: string | null;
  sub: string | null;
  consumer: string | null;
  jti: string | null;
  /** The token's iat, unix seconds; 0 when there is none. */
  tokenIat: number;
  /** The kid of the key that verified the token; null when none. */
  kid: string | null;
  /** Unix seconds from which the sidecar refuses the token; 0 without one. A WebSocket is closed then. */
  tokenValidUntil: number;
  upstreamStatus: number | null;
  upstreamTimedOut: boolean;
  /** The request to the upstream while it runs: aborted when the client leaves first. */
  upstreamRequest: ClientRequest | null;
  rateLimit: RateLimitState | null;
  failOpen: boolean;
  /** Allowed, but a shadow limit would have refused it. */
  shadow: boolean;
  /** The pool and target the request was last sent to; null until it is proxied. */
  upstream: { pool: UpstreamPool; target: Target; inFlight: boolean } | null;
  /** Targets tried so far. */
  upstreamTries: number;
  /** The route has a CORS policy: the upstream's own Access-Control-* headers are dropped. */
  cors: boolean;
  /** How long the sidecar took to answer, in ms; -1 when it was not asked (metrics). */
  checkMs: number;
  /** performance.now() when the request was last sent to a target; -1 before. */
  upstreamSentMs: number;
  /** From sending to the upstream's response headers, in ms; -1 when none came (metrics). */
  upstreamMs: number;
  /** The W3C trace (gateway/trace.ts): kept from the client or started here. */
  traceId: string;
  /** The gateway's span in it, the parent the upstream and the sidecar see. */
  spanId: string;
  /** The client's span, when it sent a valid traceparent. */
  parentSpanId: string | undefined;
  traceFlags: number;
  /** The traceparent the gateway sends on: traceId, spanId, traceFlags. */
  traceparent: string;
}

/** Who wrote the event: the gateway and the hash of the config it served the request under. */
export interface EventOrigin {
  gatewayId: string;
  configHash: string | null;
}

// The record rides on the request itself: a WeakMap costs a hash lookup per access and
// ephemeron work in every GC.
const RECORD = Symbol('gateway.record');
type RecordedRequest = IncomingMessage & { [RECORD]?: RequestRecord };

export function attachRecord(req: IncomingMessage, record: RequestRecord): void {
  (req as RecordedRequest)[RECORD] = record;
}

/** The record of a request the gateway handles (proxy events carry only the request). */
export function recordOf(req: IncomingMessage): RequestRecord | undefined {
  return (req as RecordedRequest)[RECORD];
}

export function startRecord(req: IncomingMessage, res: ServerResponse, requestId: string, clientIp: string): RequestRecord {
  const record: RequestRecord = {
    requestId,
    startedAt: Date.now(),
    startedMs: performance.now(),
    bytesBefore: res.socket ? res.socket.bytesWritten : -1,
    bytesAfter: -1,
    clientIp,
    path: pathOf(req.url ?? ''),
    route: null,
    decision: 'deny',
    reason: null,
    detail: null,
    sub: null,
    consumer: null,
    jti: null,
    tokenIat: 0,
    kid: null,
    tokenValidUntil: 0,
    upstreamStatus: null,
    upstreamTimedOut: false,
    upstreamRequest: null,
    rateLimit: null,
    failOpen: false,
    shadow: false,
    upstream: null,
    upstreamTries: 0,
    cors: false,
    checkMs: -1,
    upstreamSentMs: -1,
    upstreamMs: -1,
    traceId: '',
    spanId: '',
    parentSpanId: undefined,
    traceFlags: 0,
    traceparent: '',
  };
  // A pipelined response waits for the socket until the one before it is done, and the next one
  // is flushed before this one's 'close': count from when it gets the socket to when it is written.
  if (!res.socket) res.once('socket', (socket) => (record.bytesBefore = socket.bytesWritten));
  res.once('prefinish', () => (record.bytesAfter = req.socket.bytesWritten));
  return record;
}

/**
 * The event of a finished (or aborted) response; never holds a credential or a query string.
 * Text fields over their limit are cut to it and listed in `truncated`.
 */
export function toAuditEvent(record: RequestRecord, req: IncomingMessage, res: ServerResponse, origin: EventOrigin): AuditEvent {
  // A WebSocket handshake the gateway passed on: the upstream answered on the raw socket.
  const webSocket = res.headersSent ? undefined : webSocketTraffic(req);
  return fitToLimits({
    event_id: randomUUID(),
    ts: new Date(record.startedAt).toISOString(),
    request_id: record.requestId,
    gateway_id: origin.gatewayId,
    route: record.route,
    method: req.method ?? '',
    path: record.path,
    // 0 when the client went away before an answer was sent.
    status: webSocket ? (record.upstreamStatus ?? 0) : res.headersSent ? res.statusCode : 0,
    decision: record.decision,
    reason: record.reason,
    detail: record.detail,
    sub: record.sub,
    consumer: record.consumer,
    jti: record.jti,
    token_iat: record.tokenIat > 0 ? new Date(record.tokenIat * 1000).toISOString() : null,
    client_ip: record.clientIp,
    user_agent: req.headers['user-agent'] ?? null,
    latency_ms: performance.now() - record.startedMs,
    upstream_status: record.upstreamStatus,
    bytes_out: webSocket ? webSocket.bytesOut : bytesOut(record, req),
    upstream_target: record.upstream?.target.url ?? null,
    upstream_tries: record.upstreamTries,
    bytes_in: webSocket ? webSocket.bytesIn : null,
    rate_limit: record.rateLimit,
    fail_open: record.failOpen,
    shadow: record.shadow,
    trace_id: record.traceId || null,
    config_hash: origin.configHash,
    truncated: [],
  });
}

/**
 * The event of a request Node's parser refused before it became one (malformed, Content-Length
 * with Transfer-Encoding, headers too large or too slow): no method, path or route is known.
 */
export function refusedRequestEvent(requestId: string, clientIp: string, status: number, reason: string, detail: string, bytesOut: number, origin: EventOrigin): AuditEvent {
  return fitToLimits({
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    request_id: requestId,
    gateway_id: origin.gatewayId,
    route: null,
    method: '',
    path: '',
    status,
    decision: 'deny',
    reason,
    detail,
    sub: null,
    consumer: null,
    jti: null,
    token_iat: null,
    client_ip: clientIp,
    user_agent: null,
    latency_ms: 0,
    upstream_status: null,
    bytes_out: bytesOut,
    upstream_target: null,
    upstream_tries: 0,
    bytes_in: null,
    rate_limit: null,
    fail_open: false,
    shadow: false,
    trace_id: null,
    config_hash: origin.configHash,
    truncated: [],
  });
}

/** What was written to the client for this response, headers included. */
function bytesOut(record: RequestRecord, req: IncomingMessage): number {
  if (record.bytesBefore < 0) return 0; // the client left before this response's turn
  const after = record.bytesAfter < 0 ? req.socket.bytesWritten : record.bytesAfter;
  return Math.max(0, after - record.bytesBefore);
}

/** The raw path, without the query string; replaced by the normalized path once parsed. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
