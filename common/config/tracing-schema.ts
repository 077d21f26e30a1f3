/**
 * Tracing (README: Tracing): W3C traceparent is always kept or started and its trace id stored
 * in the audit event; `otlp` adds an OpenTelemetry export of the gateway's and the sidecar's
 * spans over OTLP/HTTP (JSON). Without `otlp` nothing is exported and a request costs nothing more.
 */
import { z } from 'zod';
import { headerName } from './fields.js';

const headerValue = z.string().regex(/^[\x20-\x7e]{0,4096}$/, 'must be printable ASCII, at most 4096 characters');

export const otlpSchema = z.strictObject({
  endpoint: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL, e.g. http://otel-collector:4318/v1/traces' })
    .describe("The collector's OTLP/HTTP traces URL, path included (a collector listens on :4318/v1/traces)"),
  headers: z.record(headerName, headerValue).default({}).describe('Headers sent with every export, e.g. an API key (never logged)'),
  timeout_ms: z.number().int().min(100).max(60_000).default(5_000).describe('How long one export may take'),
  batch_size: z.number().int().min(1).max(10_000).default(512).describe('Spans sent in one export at most'),
  flush_ms: z.number().int().min(10).max(60_000).default(1_000).describe('How long a span waits for its batch to fill'),
  max_queue: z.number().int().min(1).max(1_000_000).default(8_192).describe('Spans held while the collector is slow or away; beyond, new spans are dropped and counted'),
});

export const tracingSchema = z
  .strictObject({
    sample_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe("Of the traces the gateway starts, the share marked sampled (flag 01) and exported; a caller's traceparent keeps its own flag"),
    otlp: otlpSchema.optional().describe('Export spans to an OpenTelemetry collector; absent: no export'),
  })
  .prefault({});

export type OtlpConfig = z.output<typeof otlpSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;
