/**
 * HTTP/1.1 over a bare TCP socket, for requests an HTTP client would normalize or refuse
 * (hop-by-hop headers, trailers, lying Content-Length, hostile Host values).
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  /** Header names lower-case; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** What followed the head, as received (chunked framing included). */
  body: string;
}

export class RawClient {
  private received = '';
  private ended = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(baseUrl: string): Promise<RawClient> {
    const { hostname, port } = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes bytes; a write after the gateway closed the connection is ignored. */
  write(data: string): void {
    if (!this.socket.destroyed) this.socket.write(data, 'latin1');
  }

  /** The first response's head (and whatever body arrived with it), once its head is complete. */
  async response(timeoutMs = 5_000): Promise<RawResponse> {
    await this.until(() => this.received.includes('\r\n\r\n') || this.ended, timeoutMs, 'a response head');
    return parse(this.received);
  }

  /** Resolves once the peer closed the connection. */
  async closed(timeoutMs = 5_000): Promise<RawResponse | undefined> {
    await this.until(() => this.ended, timeoutMs, 'the gateway to close the connection');
    return this.received ? parse(this.received) : undefined;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
  }

  private until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms; received ${JSON.stringify(this.received.slice(0, 300))}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

function parse(text: string): RawResponse {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 300))}`);
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(headEnd + 4) };
}

/** One chunk of a chunked body. */
export function chunk(data: string): string {
  return `${Buffer.byteLength(data, 'latin1').toString(16)}\r\n${data}\r\n`;
}
