/**
 * Every key source and algorithm the sidecar verifies: the published examples of RFC 7515
 * (A.1 HS256, A.2 RS256, A.3 ES256) and RFC 8037 (A.4 Ed25519) with their published keys;
 * each algorithm with a key of its own kind, a token that verifies and one that must not; keys
 * chosen by kid; keys refused at load (too weak, wrong curve, private, not for signing).
 */
import { generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { parseConfig } from '../../common/config/load.js';
import type { Algorithm, IssuerConfig } from '../../common/config/schema.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { decodeJws, verifyJws } from '../../auth-sidecar/jwt/jws.js';
import { syncVerifier } from '../helpers/sync-verifier.js';
import { TokenVerifier, type VerifyResult } from '../../auth-sidecar/jwt/verifier.js';

const ROUTES = [{ name: 'users', paths: ['/users'], upstream: 'http://127.0.0.1:3001' }];
const issuers = (list: Record<string, unknown>[]): IssuerConfig[] => [...parseConfig(JSON.stringify({ issuers: list, routes: ROUTES }), 'keys-test.yml', {}).issuers];
const detail = (r: VerifyResult): string => (r.ok ? 'ok' : r.detail);
/** The token with one signature byte changed. */
const tampered = (token: string): string => {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s!, 'base64url');
  sig[0] = sig[0]! ^ 1;
  return `${h}.${p}.${sig.toString('base64url')}`;
};

// RFC 7515 appendix A: the payload {"iss":"joe","exp":1300819380,"http://example.com/is_root":true}.
const RFC_NOW = 1_300_819_000;
const RFC7515 = {
  A1: {
    alg: 'HS256',
    jwk: { kty: 'oct', k: 'AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow' },
    token:
      'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
  },
  A2: {
    alg: 'RS256',
    jwk: {
      kty: 'RSA',
      e: 'AQAB',
      n: 'ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ',
    },
    token:
      'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw',
  },
  A3: {
    alg: 'ES256',
    jwk: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
    token:
      'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q',
  },
} as const;
// RFC 8037 appendix A.4: Ed25519 over the (non-JSON) payload "Example of Ed25519 signing".
const RFC8037 = {
  jwk: { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' },
  signingInput: 'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc',
  signature: 'hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg',
};

describe('key sources and algorithms', () => {
  describe('the published examples, with the published keys given as JWKs', () => {
    for (const [name, example] of Object.entries(RFC7515)) {
      it(`RFC 7515 ${name} (${example.alg}) verifies, and not with one signature byte changed`, () => {
        const loaded = loadIssuerKeys(issuers([{ name: 'joe', iss: 'joe', algorithms: [example.alg], jwk: example.jwk }]), 'keys-test.yml', {});
        const verifier = syncVerifier(new TokenVerifier(loaded, () => RFC_NOW));
        // Signature, exp and the rest pass; the example has no sub, which an API token needs.
        expect(detail(verifier.verify(example.token))).to.equal('bad_claims');
        expect(detail(verifier.verify(tampered(example.token)))).to.equal('bad_signature');
        const decoded = decodeJws(example.token)!;
        expect(verifyJws(example.alg, loaded[0]!.keys[0]!.key, decoded.signingInput, decoded.signature)).to.equal(true);
      });
    }

    it('RFC 8037 A.4 (EdDSA, Ed25519) verifies, and not with one byte changed', () => {
      const [issuer] = loadIssuerKeys(issuers([{ name: 'ed', iss: 'ed', algorithms: ['EdDSA'], jwk: RFC8037.jwk }]), 'keys-test.yml', {});
      const key = issuer!.keys[0]!.key;
      const signature = Buffer.from(RFC8037.signature, 'base64url');
      expect(verifyJws('EdDSA', key, RFC8037.signingInput, signature)).to.equal(true);
      expect(verifyJws('EdDSA', key, `${RFC8037.signingInput}x`, signature)).to.equal(false);
    });
  });

  describe('each algorithm with a key of its kind', () => {
    const now = 1_750_000_000;
    const claims = { iss: 'multi', sub: 'alice', iat: now - 10, exp: now + 300 };
    const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const curves = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' } as const;
    const ec = Object.fromEntries(Object.entries(curves).map(([alg, curve]) => [alg, generateKeyPairSync('ec', { namedCurve: curve })]));
    const ed = generateKeyPairSync('ed25519');
    const secret = randomBytes(64);
    /** Signs like an issuer would: jsonwebtoken for what it supports, node:crypto for EdDSA. */
    const signWith = (alg: Algorithm, privateKey: KeyObject | Buffer, kid?: string): string => {
      if (alg !== 'EdDSA') return jwt.sign(claims, privateKey as jwt.Secret, { algorithm: alg as jwt.Algorithm, ...(kid ? { keyid: kid } : {}) });
      const input = `${Buffer.from(JSON.stringify({ alg, ...(kid ? { kid } : {}) })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      return `${input}.${cryptoSign(null, Buffer.from(input), privateKey as KeyObject).toString('base64url')}`;
    };
    const all: Algorithm[] = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
    const verifier = syncVerifier(
      new TokenVerifier(
        loadIssuerKeys(
          issuers([
            {
              name: 'multi',
              iss: 'multi',
              algorithms: all,
              keys: [
                { kid: 'hmac', secret_env: 'MULTI_SECRET', secret_encoding: 'base64' },
                { kid: 'rsa', public_key: pem(rsa.publicKey) },
                ...Object.entries(ec).map(([alg, pair]) => ({ kid: alg, public_key: pem(pair.publicKey) })),
                { kid: 'ed', jwk: ed.publicKey.export({ format: 'jwk' }) },
              ],
            },
          ]),
          'keys-test.yml',
          { MULTI_SECRET: secret.toString('base64') },
        ),
        () => now,
      ),
    );
    const privateOf = (alg: Algorithm): KeyObject | Buffer => (alg.startsWith('HS') ? secret : alg.startsWith('ES') ? ec[alg]!.privateKey : alg === 'EdDSA' ? ed.privateKey : rsa.privateKey);
    const kidOf = (alg: Algorithm): string => (alg.startsWith('HS') ? 'hmac' : alg.startsWith('ES') ? alg : alg === 'EdDSA' ? 'ed' : 'rsa');

    for (const alg of all) {
      it(`${alg}: verifies with its kid and without, not tampered, not with another key's kid`, () => {
        expect(detail(verifier.verify(signWith(alg, privateOf(alg), kidOf(alg))))).to.equal('ok');
        expect(detail(verifier.verify(signWith(alg, privateOf(alg))))).to.equal('ok');
        expect(detail(verifier.verify(tampered(signWith(alg, privateOf(alg), kidOf(alg)))))).to.equal('bad_signature');
        const otherKid = kidOf(alg) === 'rsa' ? 'ed' : 'rsa';
        expect(detail(verifier.verify(signWith(alg, privateOf(alg), otherKid)))).to.equal('kid_unknown');
      });
    }

    it('never takes the key a token offers in its header (jwk, jku, x5u)', () => {
      const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const token = jwt.sign(claims, attacker.privateKey, {
        algorithm: 'ES256',
        header: { alg: 'ES256', jwk: attacker.publicKey.export({ format: 'jwk' }), jku: 'http://127.0.0.1:9/jwks.json', x5u: 'http://127.0.0.1:9/x5u' } as jwt.JwtHeader,
      });
      expect(detail(verifier.verify(token))).to.equal('bad_signature');
    });
  });

  describe('keys chosen by kid', () => {
    const now = 1_750_000_000;
    const pairs = Array.from({ length: 5 }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const verifier = syncVerifier(
      new TokenVerifier(
        loadIssuerKeys(
          issuers([{ name: 'rot', iss: 'rot', algorithms: ['ES256'], keys: pairs.map((p, i) => ({ kid: `k${i}`, public_key: p.publicKey.export({ type: 'spki', format: 'pem' }).toString() })) }]),
          'keys-test.yml',
          {},
        ),
        () => now,
      ),
    );
    const token = (i: number, kid?: string) => jwt.sign({ iss: 'rot', sub: 's', iat: now - 10, exp: now + 60 }, pairs[i]!.privateKey, { algorithm: 'ES256', ...(kid ? { keyid: kid } : {}) });

    it("checks a token naming a kid against that key only", () => {
      expect(detail(verifier.verify(token(1, 'k1')))).to.equal('ok');
      expect(detail(verifier.verify(token(1, 'k0'))), 'signed by k1, naming k0').to.equal('bad_signature');
      expect(detail(verifier.verify(token(1, 'k9')))).to.equal('kid_unknown');
    });

    it('tries a token without kid against the first 4 keys in order, no more', () => {
      expect(detail(verifier.verify(token(3)))).to.equal('ok');
      expect(detail(verifier.verify(token(4))), 'the 5th key is never tried without a kid').to.equal('bad_signature');
      expect(detail(verifier.verify(token(4, 'k4')))).to.equal('ok');
    });
  });

  describe('keys refused at start', () => {
    const load = (issuer: Record<string, unknown>, env: Record<string, string> = {}) => () => loadIssuerKeys(issuers([{ name: 'x', iss: 'x', ...issuer }]), 'keys-test.yml', env);
    const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();

    it('an RSA key under 2048 bits', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
      expect(load({ algorithms: ['RS256'], public_key: spki(weak.publicKey) })).to.throw(/^issuer x: an RSA key needs at least 2048 bits, this one has 1024$/);
    });

    it('an EC key on a curve no algorithm uses, and a P-256 key for ES384', () => {
      const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
      expect(load({ algorithms: ['ES256'], public_key: spki(k1.publicKey) })).to.throw(/^issuer x: EC curve secp256k1 is not one of P-256, P-384, P-521$/);
      const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      expect(load({ algorithms: ['ES256', 'ES384'], public_key: spki(p256.publicKey) })).to.throw(/^issuer x: no key fits ES384: EC prime256v1 key$/);
    });

    it('a private JWK, a JWK for encryption, and a JWK whose alg the issuer does not allow', () => {
      const pair = generateKeyPairSync('ed25519');
      expect(load({ algorithms: ['EdDSA'], jwk: pair.privateKey.export({ format: 'jwk' }) })).to.throw(/^issuer x: the jwk holds a private key: give its public part only$/);
      expect(load({ algorithms: ['EdDSA'], jwk: { ...pair.publicKey.export({ format: 'jwk' }), use: 'enc' } })).to.throw(/^issuer x: the jwk is for use enc, not sig$/);
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      expect(load({ algorithms: ['RS256'], jwk: { ...rsa.publicKey.export({ format: 'jwk' }), alg: 'PS256' } })).to.throw(/fits none of the algorithms RS256 \(its jwk says alg PS256\)$/);
    });

    it('a base64 secret under 32 bytes once decoded, and takes one of exactly 32', () => {
      expect(load({ algorithms: ['HS256'], secret_env: 'S', secret_encoding: 'base64' }, { S: randomBytes(31).toString('base64') })).to.throw(/^issuer x: S must hold at least 32 bytes once decoded$/);
      expect(load({ algorithms: ['HS256'], secret_env: 'S', secret_encoding: 'base64' }, { S: randomBytes(32).toString('base64') })()[0]!.keys[0]!.key.symmetricKeySize).to.equal(32);
    });

    it('names the key of a list that fails, by its kid', () => {
      const ed = generateKeyPairSync('ed25519');
      expect(load({ algorithms: ['ES256'], keys: [{ kid: 'edkey', public_key: spki(ed.publicKey) }] })).to.throw(/^issuer x key edkey: the ed25519 key fits none of the algorithms ES256$/);
    });
  });

  describe('the config', () => {
    it('refuses keys beside a key source on the issuer, and a kid twice', () => {
      const problems = (issuer: Record<string, unknown>) => {
        try {
          issuers([{ name: 'x', iss: 'x', algorithms: ['HS256'], ...issuer }]);
          return [];
        } catch (err) {
          return (err as { problems?: string[] }).problems ?? [(err as Error).message];
        }
      };
      expect(problems({ secret_env: 'A', keys: [{ secret_env: 'B' }] }).join('\n')).to.include('keys replaces secret_env: give one or the other');
      expect(problems({ keys: [{ kid: 'a', secret_env: 'B' }, { kid: 'a', secret_env: 'C' }] }).join('\n')).to.include('duplicate kid "a"');
      expect(problems({ keys: [{ kid: 'a', secret_env: 'B', public_key: 'x' }] }).join('\n')).to.include('exactly one of secret_env, public_key, public_key_file, jwk is required');
    });
  });
});
