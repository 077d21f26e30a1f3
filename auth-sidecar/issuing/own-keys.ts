/**
 * The sidecar's own issuer's keys, as this sidecar holds them: read from Redis
 * (common/signing-keys.ts) at start, again every REFRESH_MS, and at once (at most once per
 * UNKNOWN_KID_INTERVAL_MS) for a token naming a kid it does not hold yet, so a key another
 * sidecar or `keys rotate` made current is taken without a failed request.
 * It serves three readers: the verifier (the keys tokens may be checked with), the token
 * endpoints (the current key to sign with) and GET /.well-known/jwks.json (the published keys).
 * A key retired longer ago than the access token lifetime (and the clock skew) is dropped: no
 * token it signed can still be valid.
 */
import type { KeyObject } from 'node:crypto';
import type { IssuerConfig, SigningAlgorithm, TokenIssuingConfig } from '../../common/config/schema.js';
import type { Logger } from '../../common/logger.js';
import { openPrivateKey, publicKeyOf, publishedUntil, SigningSecretError, type SigningKeySet, type SigningKeyStore } from '../../common/signing-keys.js';
import { issuerKey } from '../jwt/jwk-key.js';
import type { IssuerKey } from '../jwt/key-fit.js';
import type { RefreshingKeys } from '../jwt/issuer-keys.js';

const REFRESH_MS = 5_000;
const UNKNOWN_KID_INTERVAL_MS = 1_000;
const START_RETRY_MS = 500;

export interface Signer {
  kid: string;
  alg: SigningAlgorithm;
  key: KeyObject;
}

export class OwnKeys implements RefreshingKeys {
  private keys: IssuerKey[] = [];
  private published: Record<string, string>[] = [];
  private signer: Signer | undefined;
  private inFlight: Promise<void> | undefined;
  private lastUnknownKidFetch = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly issuer: IssuerConfig,
    private readonly issuing: TokenIssuingConfig,
    private readonly secret: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Makes a first key if there is none, reads the keys and keeps them fresh. Waits for Redis
   * (retrying every START_RETRY_MS); rejects when SIGNING_KEY_SECRET cannot open the current key.
   */
  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.ensureCurrent(this.issuing.algorithm, this.secret);
        this.apply(await this.store.read());
        break;
      } catch (err) {
        if (err instanceof SigningSecretError) throw err;
        if (attempt === 0) this.logger.warn('signing keys not read yet: waiting for Redis', { code: 'signing_keys_unread', error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, START_RETRY_MS));
      }
    }
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get current(): readonly IssuerKey[] {
    return this.keys;
  }

  get ready(): boolean {
    return this.signer !== undefined;
  }

  /** The key new tokens are signed with. */
  get signingKey(): Signer {
    if (!this.signer) throw new Error('the signing keys are not loaded yet');
    return this.signer;
  }

  /** The JWKS document: every key whose tokens may still be valid. */
  get jwks(): { keys: Record<string, string>[] } {
    return { keys: this.published };
  }

  fetchForUnknownKid(): Promise<void> | undefined {
    if (this.inFlight) return this.inFlight;
    const now = this.now();
    if (now - this.lastUnknownKidFetch < UNKNOWN_KID_INTERVAL_MS) return undefined;
    this.lastUnknownKidFetch = now;
    return this.refresh();
  }

  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const reading = this.store
      .read()
      .then((set) => this.apply(set))
      .catch((err: Error) => void this.logger.warn('signing keys not refreshed: the last ones read keep serving', { code: 'signing_keys_unread', error: err.message }))
      .finally(() => (this.inFlight = undefined));
    this.inFlight = reading;
    return reading;
  }

  private apply(set: SigningKeySet): void {
    const now = this.now();
    const live = set.keys.filter((k) => publishedUntil(k, this.issuing.access_token_ttl, this.issuer.clock_skew_seconds) > now);
    const keys: IssuerKey[] = [];
    for (const { record } of live) {
      try {
        keys.push(issuerKey(publicKeyOf(record), this.issuer, `issuer ${this.issuer.name} signing key ${record.kid}`, record.public_jwk, record.kid));
      } catch (err) {
        // An algorithm since removed from the issuer's allow-list: the key verifies nothing.
        this.logger.warn('signing key skipped', { code: 'signing_key_skipped', kid: record.kid, error: (err as Error).message });
      }
    }
    this.keys = keys;
    this.published = live.map((k) => k.record.public_jwk);
    const current = live.find((k) => k.record.kid === set.current);
    if (current && current.record.kid !== this.signer?.kid) {
      this.signer = { kid: current.record.kid, alg: current.record.alg, key: openPrivateKey(current.record, this.secret) };
      this.logger.info('signing key', { kid: current.record.kid, alg: current.record.alg });
    }
  }
}
