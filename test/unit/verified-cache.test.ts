import { expect } from 'chai';
import type { TokenIdentity } from '../../auth-sidecar/jwt/claims.js';
import { VerifiedTokenCache } from '../../auth-sidecar/jwt/verified-cache.js';
import type { VerifyResult } from '../../auth-sidecar/jwt/verifier.js';

function identity(exp: number): TokenIdentity {
  return { sub: 'alice', consumer: 'x:alice', username: 'alice', groups: [], scopes: [], jti: 'j', tier: undefined, issuer: 'x', iat: undefined, exp };
}

/** A verifier that counts its calls and answers what the test set. */
class CountingVerifier {
  calls = 0;
  constructor(public answer: VerifyResult) {}
  verify(): VerifyResult {
    this.calls++;
    return this.answer;
  }
}

describe('verified token cache', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('verifies a repeated token once', () => {
    const verifier = new CountingVerifier({ ok: true, identity: identity(now + 600) });
    const cache = new VerifiedTokenCache(verifier, { maxEntries: 10, maxAgeSeconds: 300 }, clock);
    for (let i = 0; i < 5; i++) expect(cache.verify('t1')).to.deep.equal({ ok: true, identity: identity(now + 600) });
    expect(verifier.calls).to.equal(1);
  });

  it('never answers from the cache once the token has expired', () => {
    const verifier = new CountingVerifier({ ok: true, identity: identity(now + 60) });
    const cache = new VerifiedTokenCache(verifier, { maxEntries: 10, maxAgeSeconds: 300 }, clock);
    cache.verify('t2');
    now += 61;
    verifier.answer = { ok: false, detail: 'expired' };
    expect(cache.verify('t2')).to.deep.equal({ ok: false, detail: 'expired' });
    expect(verifier.calls).to.equal(2);
  });

  it('does not keep failures, so garbage cannot evict good tokens', () => {
    const verifier = new CountingVerifier({ ok: false, detail: 'bad_signature' });
    const cache = new VerifiedTokenCache(verifier, { maxEntries: 10, maxAgeSeconds: 300 }, clock);
    cache.verify('bad');
    cache.verify('bad');
    expect(verifier.calls).to.equal(2);
  });

  it('holds at most maxEntries tokens', () => {
    const verifier = new CountingVerifier({ ok: true, identity: identity(now + 600) });
    const cache = new VerifiedTokenCache(verifier, { maxEntries: 2, maxAgeSeconds: 300 }, clock);
    for (const t of ['a', 'b', 'c']) cache.verify(t);
    verifier.calls = 0;
    cache.verify('a'); // evicted: least recently used
    cache.verify('c');
    expect(verifier.calls).to.equal(1);
  });

  it('asks the verifier again for a token refused for its issue time, and caches it once valid', () => {
    const verifier = new CountingVerifier({ ok: false, detail: 'iat_future' });
    const cache = new VerifiedTokenCache(verifier, { maxEntries: 10, maxAgeSeconds: 300 }, clock);
    expect(cache.verify('early')).to.deep.equal({ ok: false, detail: 'iat_future' });
    verifier.answer = { ok: true, identity: identity(now + 600) };
    expect(cache.verify('early')).to.deep.equal({ ok: true, identity: identity(now + 600) });
    cache.verify('early');
    expect(verifier.calls).to.equal(2);
  });
});
