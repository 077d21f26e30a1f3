/**
 * Steady load for the fault cases: a few clients, each sending one request at a time with a
 * short pause, every request with its own X-Request-Id, every answer kept (status, reason,
 * when it was sent and answered) so a test can check it against the audit store afterwards.
 */
import { randomUUID } from 'node:crypto';

export interface LoadRequest {
  /** What the test calls this kind of request, e.g. 'allowed', 'revoked', 'tight'. */
  kind: string;
  path: string;
  headers: Record<string, string>;
}

export interface Answer {
  kind: string;
  status: number;
  /** The `reason` of an error answer's JSON body. */
  reason: string | undefined;
  sentAt: number;
  answeredAt: number;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SteadyLoad {
  /** By request id. */
  readonly answers = new Map<string, Answer>();
  /** Requests sent and not answered yet, by request id. */
  readonly inFlight = new Map<string, { kind: string; sentAt: number }>();
  /** Requests that got no answer (connection refused or broken). */
  unanswered = 0;
  private running = true;
  private readonly clients: Promise<void>[];

  /** `next(client, i)` says what the client sends as its i-th request. */
  constructor(private readonly baseUrl: () => string, next: (client: number, i: number) => LoadRequest, clients = 4, private readonly paceMs = 20) {
    this.clients = Array.from({ length: clients }, (_, n) => this.client(n, next));
  }

  /** Answers that match, e.g. `load.where((a) => a.sentAt >= killedAt)`. */
  where(match: (a: Answer) => boolean): Answer[] {
    return [...this.answers.values()].filter(match);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.clients);
  }

  private async client(n: number, next: (client: number, i: number) => LoadRequest): Promise<void> {
    for (let i = 0; this.running; i++) {
      const request = next(n, i);
      const requestId = `fault-${randomUUID()}`;
      const sentAt = Date.now();
      this.inFlight.set(requestId, { kind: request.kind, sentAt });
      try {
        const res = await fetch(this.baseUrl() + request.path, { headers: { ...request.headers, 'X-Request-Id': requestId } });
        const body = await res.text();
        let reason: string | undefined;
        if (res.status !== 200) reason = (JSON.parse(body) as { reason?: string }).reason;
        this.answers.set(requestId, { kind: request.kind, status: res.status, reason, sentAt, answeredAt: Date.now() });
      } catch {
        // Not answered: it may or may not leave an audit event, and must not leave two.
        this.unanswered += 1;
        await pause(50);
      } finally {
        this.inFlight.delete(requestId);
      }
      await pause(this.paceMs);
    }
  }
}
