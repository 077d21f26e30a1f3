import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** An upstream that answers 200 and remembers every request it received. */
export class RecordingUpstream {
  readonly requests: RecordedRequest[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<RecordingUpstream> {
    let upstream: RecordingUpstream | undefined;
    const server = createServer((req, res) => {
      upstream?.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
    upstream = new RecordingUpstream(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
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
