import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type HttpProxy from 'http-proxy';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { isWindowName, rateLimitKeyHeader } from '../common/config/schema.js';
import { isReason, type Reason } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { CheckResponse__Output } from '../common/proto.js';
import { attachRecord, startRecord, toAuditEvent, type EventOrigin, type RequestRecord } from './audit/audit-record.js';
import type { AuditPublisher } from './audit/publisher.js';
import { CLOSE_CONNECTION, declaredBodyRefusal, limitChunkedBody } from './body-limit.js';
import { dropHopByHopHeaders } from './hop-by-hop.js';
import type { HostAllowList } from './host-allow-list.js';
import type { ClientAddress } from './client-address.js';
import { peerAddress } from './peer-address.js';
import { requestIdOf } from './request-id.js';
import { MAX_TOKEN_BODY_BYTES, relayToTokenEndpoints } from './token-relay.js';
import { isWebSocketUpgrade } from './websocket/upgrade-request.js';
import { proxyWebSocket } from './websocket/websocket-proxy.js';
import { tokenSource } from './token-source.js';
import { upstreamPath } from './upstream-path.js';
import { httpsLocation } from './https-redirect.js';
import { normalizeTarget } from './request-target.js';
import { sendError, type ErrorAnswer } from './respond.js';
import type { CorsPolicy, PreflightAnswer } from './cors/cors-policy.js';
import { ownAnswerHeaders } from './security-headers.js';
import type { RouteMatch, RouteTable } from './route-table.js';
import type { GatewayMetrics } from './metrics.js';
import type { SidecarClient } from './sidecar-client.js';
import type { Target, UpstreamPool } from './upstream/pool.js';
import type { RouteUpstream, Upstreams } from './upstream/upstreams.js';
import type { SpanExporter } from '../common/tracing/span-exporter.js';
import { gatewaySpan, isSampled, startTrace } from './trace.js';

export interface HandlerDeps {
  routes: RouteTable;
  sidecar: Pick<SidecarClient, 'check' | 'token'>;
  proxy: HttpProxy;
  /** Each route's pool of targets and proxy options, built once. */
  upstreams: Pick<Upstreams, 'of'>;
  publisher: Pick<AuditPublisher, 'publish'>;
  /** Written into every audit event: this gateway, and the hash of the config it serves. */
  origin: EventOrigin;
  logger: Logger;
  /** `gateway.allowed_hosts`; undefined: any Host. */
  hosts?: HostAllowList | undefined;
  /** The client's address (the TCP peer, or what trusted proxies forward); default the peer. */
  clientAddress?: ClientAddress;
  /** Counts and times every request (README: Metrics). */
  metrics?: Pick<GatewayMetrics, 'started' | 'finished'> | undefined;
  /** Set: a request not over TLS is answered 308 https_required to this HTTPS port (gateway.tls.plain_http: redirect). */
  httpsPort?: number | undefined;
  /** Each route's CORS policy, by route name (routes without one are absent). */
  cors?: ReadonlyMap<string, CorsPolicy> | undefined;
  /** Of the traces started here, the share marked sampled (`tracing.sample_ratio`); default 1. */
  sampleRatio?: number;
  /** The OpenTelemetry export; each sampled request's span goes to it while it is enabled. */
  spans?: Pick<SpanExporter, 'enabled' | 'add'> | undefined;
}

/** Headers a client must never be able to set: the gateway owns them (`Proxy-*` are hop-by-hop). */
const OWNED_HEADER = /^(x-consumer-|x-anonymous-|x-forwarded-|x-real-ip$|forwarded$|x-request-id$|proxy-)/;

/**
 * Removes what the client may not say to the upstream: the gateway-owned headers, and headers
 * with `_` in their name, which WSGI, CGI, PHP and Rack read as `-` (`X_Consumer_Groups` becomes
 * `HTTP_X_CONSUMER_GROUPS`, like the real one). A route may let underscore headers through; their
 * spellings of an owned header are removed all the same.
 */
function dropClientOwnedHeaders(req: IncomingMessage, allowUnderscores: boolean): void {
  for (const name of Object.keys(req.headers)) {
    if (OWNED_HEADER.test(name)) delete req.headers[name];
    else if (name.includes('_') && (!allowUnderscores || OWNED_HEADER.test(name.replaceAll('_', '-')))) delete req.headers[name];
  }
}

/**
 * The per-request path: request id, normalize, route, ask the sidecar, enforce, proxy;
 * and exactly one audit event when the response is done, whatever happened.
 */
export function createGatewayHandler(deps: HandlerDeps) {
  const sampleRatio = deps.sampleRatio ?? 1;
  const spans = deps.spans;
  return function handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIdOf(req.headers['x-request-id']);
    const clientIp = deps.clientAddress ? deps.clientAddress.of(req) : peerAddress(req.socket);
    const record = startRecord(req, res, requestId, clientIp);
    attachRecord(req, record);
    startTrace(record, req.headers, sampleRatio);
    res.setHeader('X-Request-Id', requestId);
    const metrics = deps.metrics;
    metrics?.started();
    res.on('close', () => {
      releaseUpstream(record);
      const event = toAuditEvent(record, req, res, deps.origin);
      deps.publisher.publish(event);
      metrics?.finished(record, event);
      if (spans?.enabled && isSampled(record)) spans.add(gatewaySpan(record, event));
      // The client left before the response ended: the upstream request goes too, at once, or
      // it keeps a pooled socket busy (http-proxy waits for req 'aborted', which Node 20 no
      // longer emits once the request body has ended).
      if (!res.writableFinished) record.upstreamRequest?.destroy();
      // winston formats a line before its level filter drops it: ask first, on the hot path.
      if (deps.logger.isInfoEnabled()) deps.logger.info('request', {
        request_id: requestId,
        trace_id: event.trace_id,
        method: event.method,
        path: event.path,
        route: event.route,
        status: event.status,
        decision: event.decision,
        reason: event.reason,
        response_ms: Math.round(event.latency_ms * 100) / 100,
      });
    });

    // HTTP/1.1 requires Host (RFC 9112 §3.2); the server lets such requests through to be audited.
    if (req.headers.host === undefined && req.httpVersionMinor === 1) return deny(res, record, 'bad_request', 'host_missing');
    if (deps.hosts && !deps.hosts.allows(req.headers.host)) return deny(res, record, 'misdirected_request', 'host_not_allowed');
    const target = normalizeTarget(req.url ?? '');
    if (!target) return deny(res, record, 'bad_request', 'path_malformed');
    record.path = target.path;
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    if (deps.httpsPort !== undefined && !encrypted) {
      const location = httpsLocation(req.headers.host, deps.httpsPort, target.path + target.search);
      return location ? deny(res, record, 'https_required', 'plain_http', { Location: location }) : deny(res, record, 'bad_request', 'host_missing');
    }
    // A CORS preflight is routed by the method it asks about: the route that would serve the request answers it.
    const origin = req.headers.origin;
    const asked = origin !== undefined && req.method === 'OPTIONS' ? req.headers['access-control-request-method'] : undefined;
    // A method no route here serves is still asked of the path's route, whose policy refuses it (cors_method).
    let found = deps.routes.resolve(target.path, req.headers.host, asked ?? req.method) ?? (asked === undefined ? undefined : deps.routes.resolve(target.path, req.headers.host, undefined));
    const cors = found && deps.cors?.get(found.route.name);
    if (asked !== undefined && !cors) found = deps.routes.resolve(target.path, req.headers.host, req.method);
    if (!found) {
      const allow = deps.routes.allowedMethods(target.path, req.headers.host);
      return allow.length > 0 ? deny(res, record, 'method_not_allowed', 'method', { Allow: allow.join(', ') }) : deny(res, record, 'no_route', 'no_match');
    }
    const route = found.route;
    record.route = route.name;
    if (cors) {
      record.cors = true;
      if (asked !== undefined) return answerPreflight(res, record, cors.preflight(origin!, asked, req.headers['access-control-request-headers']));
      const headers = origin === undefined ? undefined : cors.answerHeaders(origin);
      if (headers) for (const name in headers) res.setHeader(name, headers[name]!);
      // Caches must keep answers to other origins apart, allowed or not.
      res.setHeader('Vary', 'Origin');
    }
    const upgrade = isWebSocketUpgrade(req);
    if (upgrade && !route.websocket) return deny(res, record, 'bad_request', 'websocket_not_allowed');
    if (target.encodedSlash && !route.allow_encoded_slashes) return deny(res, record, 'bad_request', 'encoded_slash');
    const bodyRefusal = declaredBodyRefusal(req.headers, route.serve ? Math.min(route.max_body_bytes, MAX_TOKEN_BODY_BYTES) : route.max_body_bytes);
    if (bodyRefusal) return deny(res, record, 'payload_too_large', bodyRefusal, CLOSE_CONNECTION);

    const headers: Record<string, string> = {};
    const token = tokenSource(req, route, target.search);
    if (token.authorization !== undefined) headers['authorization'] = token.authorization;
    const keyHeader = rateLimitKeyHeader(route);
    const keyValue = keyHeader && req.headers[keyHeader];
    if (keyHeader && typeof keyValue === 'string') headers[keyHeader] = keyValue;

    const askedMs = performance.now();
    deps.sidecar
      .check({ request_id: requestId, route: route.name, method: req.method ?? '', path: target.path, client_ip: clientIp, headers, authorization_count: token.count, traceparent: record.traceparent })
      .then(
        (answer) => {
          record.checkMs = performance.now() - askedMs;
          enforce(answer, found, target.path, token.search);
        },
        (err: Error & { code?: number }) => {
          record.checkMs = performance.now() - askedMs;
          deps.logger.warn('sidecar check failed', { request_id: requestId, trace_id: record.traceId, error: err.message });
          deny(res, record, 'auth_unavailable', err.code === GrpcStatus.DEADLINE_EXCEEDED ? 'deadline_exceeded' : 'sidecar_unreachable');
        },
      )
      .catch((err: Error) => {
        // An answer the gateway cannot apply (e.g. an invalid header value) fails closed.
        deps.logger.error('cannot enforce the sidecar answer', { request_id: requestId, error: err.message });
        deny(res, record, 'auth_unavailable', 'answer_unusable');
      });

    function enforce(answer: CheckResponse__Output, { route, prefix }: RouteMatch, path: string, search: string): void {
      const identity = answer.identity;
      if (identity) {
        record.sub = identity.sub;
        record.consumer = identity.consumer;
        record.jti = identity.jti || null;
        record.tokenIat = identity.iat;
        record.kid = identity.kid || null;
        record.tokenValidUntil = identity.valid_until;
      }
      const limit = answer.rate_limit;
      if (limit) record.rateLimit = { limit: limit.limit, window: isWindowName(limit.window) ? limit.window : null, max: limit.max, remaining: limit.remaining, reset_s: limit.reset_s };
      if (!answer.allow) {
        // A reason this gateway does not know (a newer sidecar?) fails closed rather than guessing.
        if (!isReason(answer.reason)) return deny(res, record, 'auth_unavailable', `unknown_reason:${answer.reason.slice(0, 40)}`);
        return deny(res, record, answer.reason, answer.detail, answer.client_headers, answer.reason === 'rate_limited' ? route.rate_limit : undefined);
      }

      record.decision = 'allow';
      record.detail = answer.detail || null;
      record.failOpen = answer.fail_open;
      record.shadow = answer.shadow;
      const clientHeaders = answer.client_headers;
      for (const name in clientHeaders) res.setHeader(name, clientHeaders[name]!);
      if (route.serve === 'token_endpoints') return relayToTokenEndpoints(deps, req, res, record, path);
      dropClientOwnedHeaders(req, route.allow_underscore_headers);
      dropHopByHopHeaders(req.headers);
      const upstreamHeaders = answer.upstream_headers;
      for (const name in upstreamHeaders) req.headers[name.toLowerCase()] = upstreamHeaders[name];
      req.headers['x-request-id'] = requestId;
      req.headers['x-forwarded-for'] = clientIp;
      req.headers['x-forwarded-proto'] = encrypted ? 'https' : 'http';
      req.url = upstreamPath({ route, prefix }, path) + search;
      const upstream = deps.upstreams.of(route);
      const target = upstream?.pool.pick();
      if (!upstream || !target) return deny(res, record, 'upstream_unavailable', 'all_targets_down');
      if (upgrade) return webSocketTo(upstream, target);
      proxyTo(upstream, target);
      limitChunkedBody(req, res, record, route.max_body_bytes);
    }

    /** Proxies a WebSocket handshake to `target` (never retried: the client's socket is the one it has). */
    function webSocketTo(upstream: RouteUpstream, target: Target): void {
      startTry(record, upstream.pool, target);
      proxyWebSocket(deps.proxy, req, upstream.options[target.index]!, (err) => {
        releaseUpstream(record);
        upstream.pool.failed(target);
        record.reason = 'upstream_error';
        record.detail = (err as NodeJS.ErrnoException).code ?? 'proxy_error';
        if (!res.headersSent && record.upstreamStatus === null) sendError(res, 'upstream_error', requestId);
        else res.socket?.destroy();
      });
    }

    /** Proxies to `target`; a failed connect of a request without a body is tried once more, on another target. */
    function proxyTo(upstream: RouteUpstream, target: Target): void {
      const { pool } = upstream;
      startTry(record, pool, target);
      deps.proxy.web(req, res, upstream.options[target.index]!, (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? 'proxy_error';
        releaseUpstream(record);
        pool.failed(target);
        const retryable = record.upstreamTries === 1 && !res.headersSent && CONNECT_FAILURES.has(code) && pool.retryMethods.has(req.method ?? '') && !declaresBody(req);
        const next = retryable ? pool.pick(target) : undefined;
        if (next) return proxyTo(upstream, next);
        const reason: Reason = record.upstreamTimedOut ? 'upstream_timeout' : 'upstream_error';
        record.reason = reason;
        record.detail = code;
        if (!res.headersSent) sendError(res, reason, requestId);
        else res.destroy();
      });
    }
  };
}

/** A CORS preflight, answered by the gateway (never the sidecar or the upstream) and audited like any request. */
function answerPreflight(res: ServerResponse, record: RequestRecord, answer: PreflightAnswer): void {
  if (!answer.ok) return deny(res, record, 'cors_refused', answer.detail);
  record.decision = 'allow';
  record.detail = 'cors_preflight';
  res.writeHead(204, { ...ownAnswerHeaders(res.req), ...answer.headers });
  res.end();
}

/** `answer`: the route's own status and message for this refusal (a rate limit's `status`, `message`). */
function deny(res: ServerResponse, record: RequestRecord, reason: Reason, detail: string, headers?: Record<string, string>, answer?: ErrorAnswer): void {
  record.decision = 'deny';
  record.reason = reason;
  record.detail = detail;
  // A refused request's unread body would be read and thrown away to keep the connection, for as
  // long as the client cares to send it: close the connection instead.
  sendError(res, reason, record.requestId, hasUnreadBody(res.req) ? { ...headers, ...CLOSE_CONNECTION } : headers, answer);
}

/** Connection failures after which nothing reached the target: a request without a body may go to another. */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The request goes to `target` now: in flight there, one more try. */
function startTry(record: RequestRecord, pool: UpstreamPool, target: Target): void {
  record.upstream = { pool, target, inFlight: true };
  record.upstreamTries++;
  record.upstreamSentMs = performance.now();
}

/** The request's target is no longer waited on: it stops counting as in flight (once). */
function releaseUpstream(record: RequestRecord): void {
  const upstream = record.upstream;
  if (!upstream?.inFlight) return;
  upstream.inFlight = false;
  upstream.pool.finished(upstream.target);
}

function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function hasUnreadBody(req: IncomingMessage): boolean {
  return !req.complete && declaresBody(req);
}
