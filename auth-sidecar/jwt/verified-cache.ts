import { LRUCache } from 'lru-cache';
import type { TokenIdentity } from './claims.js';
import type { TokenVerifier, VerifyResult } from './verifier.js';

/**
 * Remembers tokens that verified, so a client's repeated token costs a map lookup instead of a
 * decode and a signature check. Bounded in entries; an entry never outlives the token's `exp`
 * (nor `maxAgeSeconds`). Only successes are kept: a flood of garbage tokens cannot evict good
 * ones. Revocation is not cached here: it is checked in Redis on every request. Every other
 * check of the verifier (nbf, iat, lifetime, type, crit, claims) gives the same answer or turns
 * to a pass as time goes on, never to a refusal; `exp`, the one that does, bounds each entry.
 */
export class VerifiedTokenCache {
  private readonly cache: LRUCache<string, TokenIdentity>;
  /** Tokens answered from the cache, and verified afresh (the metrics read them). */
  readonly counts = { hits: 0, misses: 0 };

  constructor(
    private readonly verifier: Pick<TokenVerifier, 'verify'>,
    options: { maxEntries: number; maxAgeSeconds: number },
    private readonly nowSeconds: () => number = () => Date.now() / 1000,
  ) {
    this.cache = new LRUCache({ max: options.maxEntries, ttl: options.maxAgeSeconds * 1000, ttlAutopurge: false });
  }

  verify(token: string): VerifyResult | Promise<VerifyResult> {
    const now = this.nowSeconds();
    const cached = this.cache.get(token);
    if (cached && cached.exp > now) {
      this.counts.hits++;
      return { ok: true, identity: cached };
    }
    this.counts.misses++;
    const result = this.verifier.verify(token);
    return result instanceof Promise ? result.then((r) => this.remember(token, r, now)) : this.remember(token, result, now);
  }

  private remember(token: string, result: VerifyResult, now: number): VerifyResult {
    if (result.ok) {
      const ttlMs = Math.min((result.identity.exp - now) * 1000, this.cache.ttl);
      if (ttlMs >= 1000) this.cache.set(token, result.identity, { ttl: ttlMs });
    }
    return result;
  }
}
