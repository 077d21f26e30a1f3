/**
 * The gateway's part of a W3C trace (README: Tracing): the client's trace is kept when its
 * `traceparent` is valid, a new one started otherwise; the gateway's span gets an id of its own,
 * which the upstream and the sidecar see as their parent. `tracestate` goes on only with a kept trace.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AuditEvent } from '../common/audit-event.js';
import { keptTracestate, parseTraceparent, SAMPLED, TraceIds, traceparent } from '../common/tracing/trace-context.js';
import { epochMs, SPAN_KIND_SERVER, type Span } from '../common/tracing/span-exporter.js';
import type { RequestRecord } from './audit/audit-record.js';

const ids = new TraceIds();

/**
 * Fills the record's trace and sets the `traceparent` (and `tracestate`) the upstream will get.
 * `sampleRatio`: the share of the traces started here that are marked sampled.
 */
export function startTrace(record: RequestRecord, headers: IncomingHttpHeaders, sampleRatio: number): void {
  const incoming = parseTraceparent(headers.traceparent);
  record.traceId = incoming ? incoming.traceId : ids.traceId();
  record.parentSpanId = incoming?.parentId;
  record.spanId = ids.spanId();
  record.traceFlags = incoming ? incoming.flags : sampleRatio >= 1 || Math.random() < sampleRatio ? SAMPLED : 0;
  record.traceparent = traceparent(record.traceId, record.spanId, record.traceFlags);
  headers.traceparent = record.traceparent;
  const state = incoming && keptTracestate(headers.tracestate);
  if (state) headers.tracestate = state;
  else delete headers.tracestate;
}

export function isSampled(record: RequestRecord): boolean {
  return (record.traceFlags & SAMPLED) !== 0;
}

/** The gateway's span of a finished request: what its audit event says, without query strings or credentials. */
export function gatewaySpan(record: RequestRecord, event: AuditEvent): Span {
  return {
    traceId: record.traceId,
    spanId: record.spanId,
    parentSpanId: record.parentSpanId,
    name: `${event.method} ${event.route ?? '(no route)'}`,
    kind: SPAN_KIND_SERVER,
    startMs: performance.timeOrigin + record.startedMs,
    endMs: epochMs(),
    attributes: {
      'http.request.method': event.method,
      'url.path': event.path,
      'http.route': event.route,
      'http.response.status_code': event.status,
      'client.address': event.client_ip,
      'apigw.request_id': event.request_id,
      'apigw.decision': event.decision,
      'apigw.reason': event.reason,
      'apigw.upstream.status_code': event.upstream_status,
      'apigw.config_hash': event.config_hash,
    },
    error: event.status === 0 || event.status >= 500,
  };
}
