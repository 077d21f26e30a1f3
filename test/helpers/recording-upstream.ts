import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A request header asking the upstream to wait that many ms before answering (a slow upstream). */
export const UPSTREAM_DELAY_HEADER = 'x-test-upstream-delay-ms';

/** A request header asking the upstream to answer with that status instead of 200. */
export const UPSTREAM_STATUS_HEADER = 'x-test-upstream-status';

/** A request header asking the upstream to answer with CORS headers of its own (`*`, Vary: Accept): a too-permissive service. */
export const UPSTREAM_CORS_HEADER = 'x-test-upstream-cors';

/** An upstream that answers 200 and remembers every request it received. */
export class RecordingUpstream {
  readonly requests: RecordedRequest[] = [];
  private constructor(private readonly server: Server) {}

  /** `port` 0 picks a free one; give a closed upstream's port to start it again there. */
  static async start(port = 0): Promise<RecordingUpstream> {
    let upstream: RecordingUpstream | undefined;
    const server = createServer((req, res) => {
      upstream?.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      const answer = (): void => {
        const cors = req.headers[UPSTREAM_CORS_HEADER] ? { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': '*', Vary: 'Accept' } : {};
        res.writeHead(Number(req.headers[UPSTREAM_STATUS_HEADER] ?? 200), { 'Content-Type': 'application/json', ...cors });
        res.end('{"ok":true}');
      };
      const delayMs = Number(req.headers[UPSTREAM_DELAY_HEADER] ?? 0);
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
    upstream = new RecordingUpstream(server);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return upstream;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The request the gateway forwarded with this X-Request-Id, if any. */
  find(requestId: string): RecordedRequest | undefined {
    return this.requests.find((r) => r.headers['x-request-id'] === requestId);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
