/**
 * The sidecar's span of one decision (README: Tracing): a child of the gateway's span, which the
 * gateway names in CheckRequest.traceparent. Only for sampled traces, and only while the
 * OpenTelemetry export is on; a check from a gateway that sent no trace has none.
 */
import type { CheckRequest__Output, CheckResponse } from '../../common/proto.js';
import { parseTraceparent, SAMPLED, TraceIds } from '../../common/tracing/trace-context.js';
import { epochMs, SPAN_KIND_SERVER, type Span } from '../../common/tracing/span-exporter.js';

const ids = new TraceIds();

/** `startMs`: when the check arrived (epoch ms); undefined when the trace is absent, invalid or not sampled. */
export function decisionSpan(request: CheckRequest__Output, response: CheckResponse, startMs: number): Span | undefined {
  const trace = parseTraceparent(request.traceparent);
  if (!trace || (trace.flags & SAMPLED) === 0) return undefined;
  return {
    traceId: trace.traceId,
    spanId: ids.spanId(),
    parentSpanId: trace.parentId,
    name: `authorize ${request.route}`,
    kind: SPAN_KIND_SERVER,
    startMs,
    endMs: epochMs(),
    attributes: {
      'apigw.request_id': request.request_id,
      'http.route': request.route,
      'apigw.decision': response.allow ? 'allow' : 'deny',
      'apigw.reason': response.reason || null,
      'apigw.detail': response.detail || null,
      'apigw.fail_open': response.fail_open ?? false,
    },
    error: response.reason === 'auth_unavailable',
  };
}

/** The trace id a check names, for log lines; undefined when it names none. */
export function traceIdOf(request: CheckRequest__Output): string | undefined {
  return parseTraceparent(request.traceparent)?.traceId;
}
