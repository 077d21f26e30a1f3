/**
 * An OpenTelemetry collector's OTLP/HTTP traces endpoint on a free loopback port, JSON encoding:
 * records every export (headers, spans flattened with their service) and answers each with the
 * next planned status (200 once the plan is used up).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number };
  attributes: Record<string, unknown>;
}

interface OtlpBody {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: { spans: (Omit<CollectedSpan, 'service' | 'attributes'> & { attributes: OtlpAttribute[] })[] }[];
  }[];
}
type OtlpAttribute = { key: string; value: { stringValue?: string; intValue?: string; boolValue?: boolean; doubleValue?: number } };

const valueOf = (a: OtlpAttribute): unknown => a.value.stringValue ?? (a.value.intValue !== undefined ? Number(a.value.intValue) : (a.value.boolValue ?? a.value.doubleValue));
const attributes = (list: OtlpAttribute[]): Record<string, unknown> => Object.fromEntries(list.map((a) => [a.key, valueOf(a)]));

export class OtlpCollector {
  /** Every export received, answered or not, with the status it got. */
  readonly exports: { headers: IncomingHttpHeaders; path: string; spans: CollectedSpan[]; status: number }[] = [];
  private constructor(private readonly server: Server, private readonly plan: number[]) {}

  static async start(plan: number[] = []): Promise<OtlpCollector> {
    let collector: OtlpCollector | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpBody;
        const spans = body.resourceSpans.flatMap((r) => {
          const service = String(attributes(r.resource.attributes)['service.name']);
          return r.scopeSpans.flatMap((s) => s.spans.map((span) => ({ ...span, service, attributes: attributes(span.attributes) })));
        });
        const status = collector!.plan.shift() ?? 200;
        collector!.exports.push({ headers: req.headers, path: req.url ?? '', spans, status });
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end('{}');
      });
    });
    collector = new OtlpCollector(server, [...plan]);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return collector;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
  }

  /** The spans of the exports that were taken (2xx). */
  get spans(): CollectedSpan[] {
    return this.exports.filter((e) => e.status < 300).flatMap((e) => e.spans);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
