/**
 * A webhook receiver on a free loopback port that records every request (raw body included)
 * and answers each with the next planned behaviour: a status, or `hang` (never answers).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Answer = number | 'hang';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: { delivery_id: string; state: string; alert: { id: string } & Record<string, unknown> };
  answered: Answer;
}

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private constructor(private readonly server: Server, private readonly plan: Answer[], private readonly then: Answer) {}

  /** Answers the first requests as `plan` says, every later one with `then` (default 200). */
  static async start(plan: Answer[] = [], then: Answer = 200): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answered = receiver!.plan.shift() ?? receiver!.then;
        const rawBody = Buffer.concat(chunks).toString('utf8');
        receiver!.received.push({ headers: req.headers, rawBody, body: JSON.parse(rawBody) as ReceivedWebhook['body'], answered });
        if (answered === 'hang') return;
        res.writeHead(answered, { 'Content-Type': 'text/plain' });
        res.end('ok');
      });
    });
    receiver = new WebhookReceiver(server, [...plan], then);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/alerts`;
  }

  /** The requests that were answered with a 2xx. */
  get succeeded(): ReceivedWebhook[] {
    return this.received.filter((r) => typeof r.answered === 'number' && r.answered >= 200 && r.answered < 300);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
