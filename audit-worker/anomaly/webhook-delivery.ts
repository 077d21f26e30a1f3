/**
 * The alert webhook's delivery loop: claims due rows of the outbox (webhook-outbox.ts), POSTs
 * each as signed JSON, marks it delivered on a 2xx answer, else retries it with exponential
 * backoff and jitter until `max_attempts`, then marks it failed. Polls every second and is woken
 * at once when this worker queues a change. Any number of workers may run it on one store.
 */
import type { WebhookConfig } from '../../common/config/anomaly-schema.js';
import type { Logger } from '../../common/logger.js';
import type { ClaimedDelivery, WebhookOutbox } from './webhook-outbox.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, signWebhook } from './webhook-signature.js';

export interface WebhookDeliveryOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** How often the outbox is read when nothing woke the loop (default 1 s). */
  pollMs?: number;
  /** Deliveries claimed, and sent concurrently, at a time (default 10). */
  batch?: number;
  random?: () => number;
  now?: () => number;
}

/** Shortest secret accepted: HMAC-SHA256 gains nothing from a longer key than its 32-byte output, and guessable below it. */
export const MIN_SECRET_BYTES = 32;

/**
 * The delivery options of the config, with the secret read from its environment variable;
 * undefined when no url is set. Throws, naming the key and variable, when the secret is missing
 * or too short (the worker then refuses to start).
 */
export function webhookDeliveryOptions(config: WebhookConfig, env: NodeJS.ProcessEnv = process.env): WebhookDeliveryOptions | undefined {
  if (config.url === undefined) return undefined;
  const name = config.secret_env ?? '';
  const secret = env[name];
  if (!secret) throw new Error(`anomaly.webhook.secret_env: environment variable ${name} is not set`);
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new Error(`anomaly.webhook.secret_env: ${name} must hold at least ${MIN_SECRET_BYTES} bytes`);
  return {
    url: config.url,
    secret,
    timeoutMs: config.timeout * 1000,
    maxAttempts: config.max_attempts,
    backoffBaseMs: config.backoff.base * 1000,
    backoffCapMs: config.backoff.cap * 1000,
  };
}

/** Wait after failed attempt `attempt` (1-based): between half and all of min(cap, base × 2^(attempt-1)). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const full = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(full / 2 + (random() * full) / 2);
}

/** What went wrong with an attempt, for the log and the row: a status or an error code, never the URL's path or a header. */
function describeError(err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  return error.cause?.code ?? error.cause?.message ?? error.message;
}

export class WebhookDelivery {
  private readonly pollMs: number;
  private readonly batch: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private woken = false;
  /** When the soonest retry scheduled by this loop is due (epoch ms). */
  private retryAt = Infinity;
  private wakeUp: (() => void) | undefined;
  private storeDown = false;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly options: WebhookDeliveryOptions,
    private readonly logger: Logger,
  ) {
    this.pollMs = options.pollMs ?? 1000;
    this.batch = options.batch ?? 10;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Reads the outbox now (this worker has just queued a change). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Ends the loop; an attempt in flight is cut short and given back to the outbox, due at once. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeUp?.();
    await this.running;
  }

  private async run(): Promise<void> {
    // A lease outlasts an attempt (bounded by the timeout) and its marking.
    const leaseMs = this.options.timeoutMs + 30_000;
    while (!this.stopping.signal.aborted) {
      this.woken = false;
      let claimed: ClaimedDelivery[] = [];
      try {
        claimed = await this.outbox.claim(this.batch, leaseMs);
        if (this.storeDown) this.logger.info('alert webhook outbox readable again', { code: 'alert_webhook_store_back' });
        this.storeDown = false;
      } catch (err) {
        // Once per outage, not once per poll; the rows wait in the store.
        if (!this.storeDown) this.logger.warn('alert webhook outbox unreadable', { code: 'alert_webhook_store_error', error: (err as Error).message });
        this.storeDown = true;
      }
      if (claimed.length > 0) {
        const retries = await Promise.all(claimed.map((d) => this.deliver(d)));
        for (const delayMs of retries) if (delayMs !== undefined) this.retryAt = Math.min(this.retryAt, this.now() + delayMs);
      } else {
        // Up to the next poll, or sooner when a retry this loop scheduled is due before it.
        const waitMs = Math.max(0, Math.min(this.pollMs, this.retryAt - this.now()));
        this.retryAt = Infinity;
        await this.idle(waitMs);
      }
    }
  }

  private idle(waitMs: number): Promise<void> {
    if (this.woken || this.stopping.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.wakeUp = done;
    });
  }

  /** Sends one delivery and stores the outcome; answers the delay of the retry it scheduled, if any. */
  private async deliver(d: ClaimedDelivery): Promise<number | undefined> {
    const { url, secret, timeoutMs, maxAttempts } = this.options;
    const body = JSON.stringify({ delivery_id: d.id, state: d.state, alert: d.alert });
    const t = Math.floor(this.now() / 1000);
    let failure: { status?: number; error: string };
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'ts-api-gateway-alert-webhook', [SIGNATURE_HEADER]: signWebhook(secret, body, t), [DELIVERY_HEADER]: d.id },
        body,
        // A redirect would carry the signed alert elsewhere: a 3xx is a failed attempt.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.stopping.signal]),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        await this.mark(d, () => this.outbox.delivered(d));
        this.logger.info('alert webhook delivered', { code: 'alert_webhook_delivered', delivery_id: d.id, alert_id: d.alert.id, state: d.state, attempt: d.attempt, status: res.status });
        return undefined;
      }
      failure = { status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      if (this.stopping.signal.aborted) {
        await this.mark(d, () => this.outbox.release(d));
        return undefined;
      }
      failure = { error: describeError(err, timeoutMs) };
    }
    const delayMs = d.attempt < maxAttempts ? backoffDelay(d.attempt, this.options.backoffBaseMs, this.options.backoffCapMs, this.random) : undefined;
    const fields = { delivery_id: d.id, alert_id: d.alert.id, state: d.state, attempt: d.attempt, max_attempts: maxAttempts, ...failure };
    this.logger.warn('alert webhook attempt failed', { code: 'alert_webhook_attempt_failed', ...fields, retry_in_ms: delayMs ?? null });
    await this.mark(d, () => this.outbox.attemptFailed(d, failure.error, delayMs));
    if (delayMs === undefined) this.logger.error('alert webhook failed', { code: 'alert_webhook_failed', ...fields });
    return delayMs;
  }

  /** A mark the store refuses leaves the row leased; it is sent again once the lease is over. */
  private async mark(d: ClaimedDelivery, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      this.logger.warn('alert webhook outcome not stored', { code: 'alert_webhook_store_error', delivery_id: d.id, error: (err as Error).message });
    }
  }
}
