/**
 * An issuer's keys from its JWKS URL (RFC 7517), kept by the sidecar:
 * - fetched with a timeout, no redirects, at most 256 KiB, at start and again when the answer's
 *   `Cache-Control: max-age` runs out (bounded by `jwks.min_ttl_seconds` and `max_ttl_seconds`;
 *   300 s without one);
 * - a token naming a kid the keys lack makes at most one fetch per
 *   `unknown_kid_interval_seconds` (however many such tokens come), and waits for it, so a key
 *   published just before its first token is taken without a failed request;
 * - a failed fetch keeps the last good keys serving, and the next try waits
 *   `failure_cooldown_seconds`; it is logged (`jwks_fetch_failed`);
 * - each key is held to key-fit.ts like a static one: a key fitting none of the issuer's
 *   algorithms, private, or not for signatures is skipped (logged), never used.
 * Only the configured URL is ever fetched: a token's `jku` or `x5u` is never followed.
 */
import type { IssuerConfig } from '../../common/config/schema.js';
import { JWKS_DEFAULTS } from '../../common/config/schema.js';
import type { Logger } from '../../common/logger.js';
import { keyOfIssuerJwk } from './jwk-key.js';
import type { RefreshingKeys } from './issuer-keys.js';
import type { IssuerKey } from './key-fit.js';

const MAX_JWKS_BYTES = 256 * 1024;
const DEFAULT_TTL_SECONDS = 300;

export class JwksKeys implements RefreshingKeys {
  private keys: IssuerKey[] = [];
  private fetched = false;
  private inFlight: Promise<void> | undefined;
  /** Date.now() after which the keys are fetched again. */
  private refreshAt = 0;
  private lastUnknownKidFetch = -Infinity;
  private readonly settings;
  private timer: NodeJS.Timeout | undefined;
  /** Fetches started so far (for tests and logs). */
  fetches = 0;

  constructor(
    private readonly issuer: IssuerConfig,
    private readonly url: string,
    private readonly logger: Logger,
  ) {
    this.settings = issuer.jwks ?? JWKS_DEFAULTS;
    void this.refresh();
    this.timer = setInterval(() => Date.now() >= this.refreshAt && void this.refresh(), 1_000);
    this.timer.unref();
  }

  get current(): readonly IssuerKey[] {
    return this.keys;
  }

  /** True once a fetch has succeeded (its keys may since have been kept through failures). */
  get ready(): boolean {
    return this.fetched;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * For a token whose kid (or algorithm) the keys lack: the fetch in flight, or a new one if the
   * last such fetch is older than unknown_kid_interval_seconds; undefined when neither (the
   * token is refused at once).
   */
  fetchForUnknownKid(): Promise<void> | undefined {
    if (this.inFlight) return this.inFlight;
    const now = Date.now();
    if (now - this.lastUnknownKidFetch < this.settings.unknown_kid_interval_seconds * 1000) return undefined;
    this.lastUnknownKidFetch = now;
    return this.refresh();
  }

  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.fetches++;
    this.inFlight = this.fetchKeys()
      .then(
        ({ keys, ttlSeconds }) => {
          this.keys = keys;
          this.fetched = true;
          this.refreshAt = Date.now() + ttlSeconds * 1000;
        },
        (err: Error) => {
          this.refreshAt = Date.now() + this.settings.failure_cooldown_seconds * 1000;
          this.logger.warn('jwks fetch failed: the last good keys keep serving', {
            code: 'jwks_fetch_failed',
            issuer: this.issuer.name,
            url: this.url,
            error: err.message,
            keys: this.keys.length,
          });
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }

  private async fetchKeys(): Promise<{ keys: IssuerKey[]; ttlSeconds: number }> {
    const res = await fetch(this.url, { signal: AbortSignal.timeout(this.settings.timeout_ms), redirect: 'error', headers: { accept: 'application/json' } });
    if (res.status !== 200) throw new Error(`answered ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_JWKS_BYTES) throw new Error(`is ${declared} bytes, over ${MAX_JWKS_BYTES}`);
    const text = await res.text();
    if (Buffer.byteLength(text) > MAX_JWKS_BYTES) throw new Error(`is over ${MAX_JWKS_BYTES} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error('is not JSON');
    }
    const list = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw new Error('has no keys array');
    const keys: IssuerKey[] = [];
    list.forEach((jwk: unknown, i) => {
      const where = `issuer ${this.issuer.name} jwks key ${i}`;
      try {
        if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error(`${where}: not an object`);
        // A published secret is no secret: anyone who read the JWKS could sign with it.
        if ((jwk as Record<string, unknown>)['kty'] === 'oct') throw new Error(`${where}: a JWKS may not hold a secret (oct) key`);
        keys.push(keyOfIssuerJwk(jwk as Record<string, unknown>, this.issuer, where));
      } catch (err) {
        this.logger.warn('jwks key skipped', { code: 'jwks_key_skipped', issuer: this.issuer.name, error: (err as Error).message });
      }
    });
    return { keys, ttlSeconds: this.ttlOf(res.headers.get('cache-control')) };
  }

  private ttlOf(cacheControl: string | null): number {
    const maxAge = /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(cacheControl ?? '')?.[1];
    const ttl = maxAge === undefined ? DEFAULT_TTL_SECONDS : Number(maxAge);
    return Math.min(this.settings.max_ttl_seconds, Math.max(this.settings.min_ttl_seconds, ttl));
  }
}
