import { createHmac, generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { parseConfig } from '../../common/config/load.js';
import type { IssuerConfig } from '../../common/config/schema.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { syncVerifier } from '../helpers/sync-verifier.js';
import { TokenVerifier, type VerifyResult } from '../../auth-sidecar/jwt/verifier.js';

const NOW = 1_750_000_000;
const SECRET = 'local-test-secret-0123456789abcdefghij';
const OTHER_SECRET = 'another-test-secret-0123456789abcdefgh';
const ENV = { LOCAL_JWT_SECRET: SECRET };

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const RSA_PUBLIC_PEM = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const EC_PUBLIC_PEM = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const ROUTES = [{ name: 'users', paths: ['/users'], upstream: 'http://127.0.0.1:3001' }];

/** Issuer configs as the sidecar gets them: through parseConfig, so defaults are applied. */
function issuerConfigs(issuers: Record<string, unknown>[]): IssuerConfig[] {
  return [...parseConfig(JSON.stringify({ issuers, routes: ROUTES }), 'verifier-test.yml', {}).issuers];
}

const ISSUERS = issuerConfigs([
  { name: 'local', iss: 'local-issuer', audience: 'api', algorithms: ['HS256'], secret_env: 'LOCAL_JWT_SECRET' },
  { name: 'rsa', iss: 'rsa-issuer', algorithms: ['RS256'], public_key: RSA_PUBLIC_PEM },
  { name: 'ec', iss: 'ec-issuer', algorithms: ['ES256'], public_key: EC_PUBLIC_PEM },
]);

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Claims of a valid local token at NOW; override or drop (undefined) any of them. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    iss: 'local-issuer',
    aud: 'api',
    sub: 'alice',
    jti: 'jti-1',
    iat: NOW - 60,
    exp: NOW + 300,
    groups: ['admins', 'customers'],
    tier: 'premium',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined));
}

const signLocal = (overrides: Record<string, unknown> = {}, secret = SECRET, algorithm: jwt.Algorithm = 'HS256'): string =>
  jwt.sign(claims(overrides), secret, { algorithm });

const detailOf = (result: VerifyResult): string => (result.ok ? 'ok' : result.detail);

describe('token verifier', () => {
  const verifier = syncVerifier(new TokenVerifier(loadIssuerKeys(ISSUERS, 'verifier-test.yml', ENV), () => NOW));

  it('accepts a valid HS256 token and returns its identity', () => {
    expect(verifier.verify(signLocal())).to.deep.equal({
      ok: true,
      identity: {
        sub: 'alice',
        consumer: 'local:alice',
        username: 'alice',
        groups: ['admins', 'customers'],
        scopes: [],
        jti: 'jti-1',
        tier: 'premium',
        issuer: 'local',
        iat: NOW - 60,
        exp: NOW + 300,
        // Refused from exp plus the issuer's default 30 s of clock skew (a WebSocket closes then).
        validUntil: NOW + 330,
      },
    });
  });

  it('accepts a valid RS256 token', () => {
    const token = jwt.sign(claims({ iss: 'rsa-issuer', aud: undefined, sub: 'bob', tier: undefined }), rsa.privateKey, { algorithm: 'RS256' });
    const result = verifier.verify(token);
    expect(detailOf(result)).to.equal('ok');
    expect(result.ok && result.identity.consumer).to.equal('rsa:bob');
    expect(result.ok && result.identity.tier).to.equal(undefined);
  });

  it('accepts a valid ES256 token', () => {
    const token = jwt.sign(claims({ iss: 'ec-issuer', aud: undefined, sub: 'carol' }), ec.privateKey, { algorithm: 'ES256' });
    const result = verifier.verify(token);
    expect(detailOf(result)).to.equal('ok');
    expect(result.ok && result.identity.consumer).to.equal('ec:carol');
  });

  it('rejects a token whose alg is none', () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`;
    expect(verifier.verify(token)).to.deep.equal({ ok: false, detail: 'alg_not_allowed' });
  });

  it('rejects an HS256 token signed with the RSA public key as HMAC secret (key confusion)', () => {
    const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims({ iss: 'rsa-issuer', aud: undefined }))}`;
    const signature = createHmac('sha256', RSA_PUBLIC_PEM).update(signingInput).digest('base64url');
    expect(verifier.verify(`${signingInput}.${signature}`)).to.deep.equal({ ok: false, detail: 'alg_not_allowed' });
  });

  it('rejects an algorithm outside the issuer allow-list even with the right key', () => {
    expect(verifier.verify(signLocal({}, SECRET, 'HS384'))).to.deep.equal({ ok: false, detail: 'alg_not_allowed' });
  });

  it('rejects an HS256 token signed with another secret', () => {
    expect(verifier.verify(signLocal({}, OTHER_SECRET))).to.deep.equal({ ok: false, detail: 'bad_signature' });
  });

  it('rejects an RS256 token signed with another private key', () => {
    const token = jwt.sign(claims({ iss: 'rsa-issuer', aud: undefined }), otherRsa.privateKey, { algorithm: 'RS256' });
    expect(verifier.verify(token)).to.deep.equal({ ok: false, detail: 'bad_signature' });
  });

  it('rejects a token from an unknown issuer', () => {
    expect(verifier.verify(signLocal({ iss: 'evil-issuer' }))).to.deep.equal({ ok: false, detail: 'unknown_issuer' });
  });

  it('rejects a token without iss as from an unknown issuer', () => {
    expect(verifier.verify(signLocal({ iss: undefined }))).to.deep.equal({ ok: false, detail: 'unknown_issuer' });
  });

  it('rejects a token without exp', () => {
    expect(verifier.verify(signLocal({ exp: undefined }))).to.deep.equal({ ok: false, detail: 'exp_missing' });
  });

  it('rejects a token expired beyond the clock skew', () => {
    expect(verifier.verify(signLocal({ exp: NOW - 31 }))).to.deep.equal({ ok: false, detail: 'expired' });
  });

  it('accepts a token expired within the clock skew', () => {
    expect(detailOf(verifier.verify(signLocal({ exp: NOW - 29 })))).to.equal('ok');
  });

  it('follows the injected clock, not the wall clock', () => {
    const token = signLocal({ exp: NOW + 300 });
    const later = syncVerifier(new TokenVerifier(loadIssuerKeys(ISSUERS, 'verifier-test.yml', ENV), () => NOW + 331));
    expect(later.verify(token)).to.deep.equal({ ok: false, detail: 'expired' });
  });

  it('rejects a token whose nbf is beyond the clock skew in the future', () => {
    expect(verifier.verify(signLocal({ nbf: NOW + 31 }))).to.deep.equal({ ok: false, detail: 'not_yet_valid' });
  });

  it('accepts a token whose nbf is within the clock skew in the future', () => {
    expect(detailOf(verifier.verify(signLocal({ nbf: NOW + 29 })))).to.equal('ok');
  });

  it('rejects a token for another audience', () => {
    expect(verifier.verify(signLocal({ aud: 'billing' }))).to.deep.equal({ ok: false, detail: 'wrong_audience' });
  });

  it('rejects garbage as malformed', () => {
    expect(verifier.verify('not-a-token')).to.deep.equal({ ok: false, detail: 'malformed' });
    expect(verifier.verify('')).to.deep.equal({ ok: false, detail: 'malformed' });
    expect(verifier.verify('a.b.c')).to.deep.equal({ ok: false, detail: 'malformed' });
    expect(verifier.verify(`${signLocal()} `)).to.deep.equal({ ok: false, detail: 'malformed' });
  });

  it('rejects a token whose payload is JSON null, an array or not JSON as malformed', () => {
    const header = b64url({ alg: 'HS256', typ: 'JWT' });
    expect(verifier.verify(`${header}.${b64url('null')}.c2ln`)).to.deep.equal({ ok: false, detail: 'malformed' });
    expect(verifier.verify(`${header}.${b64url([claims()])}.c2ln`)).to.deep.equal({ ok: false, detail: 'malformed' });
    expect(verifier.verify(`${header}.${b64url('not json')}.c2ln`)).to.deep.equal({ ok: false, detail: 'malformed' });
  });

  it('rejects a token without sub', () => {
    expect(verifier.verify(signLocal({ sub: undefined }))).to.deep.equal({ ok: false, detail: 'bad_claims' });
  });

  it('rejects a group holding a comma', () => {
    expect(verifier.verify(signLocal({ groups: ['admins,root'] }))).to.deep.equal({ ok: false, detail: 'bad_claims' });
  });

  it('rejects a group holding CR or LF as claim_invalid', () => {
    expect(verifier.verify(signLocal({ groups: ['admins\r\nx-injected: 1'] }))).to.deep.equal({ ok: false, detail: 'claim_invalid' });
    expect(verifier.verify(signLocal({ groups: ['admins\n'] }))).to.deep.equal({ ok: false, detail: 'claim_invalid' });
  });

  it('rejects every used string claim holding a control character as claim_invalid', () => {
    for (const claims of [{ jti: 'x\u0000y' }, { sub: 'al\u007fice' }, { tier: 'free\t' }, { preferred_username: 'a\u001bb' }, { groups: 'admins cust\u0000omers' }]) {
      expect(verifier.verify(signLocal(claims)), JSON.stringify(claims)).to.deep.equal({ ok: false, detail: 'claim_invalid' });
    }
  });

  it('rejects groups that are not strings', () => {
    expect(verifier.verify(signLocal({ groups: ['admins', 7] }))).to.deep.equal({ ok: false, detail: 'bad_claims' });
  });

  it('reads space-separated groups as a list', () => {
    const result = verifier.verify(signLocal({ groups: 'admins  customers' }));
    expect(result.ok && result.identity.groups).to.deep.equal(['admins', 'customers']);
  });

  it('reads a token without groups as no groups and without jti as an empty jti', () => {
    const result = verifier.verify(signLocal({ groups: undefined, jti: undefined }));
    expect(result.ok && result.identity.groups).to.deep.equal([]);
    expect(result.ok && result.identity.jti).to.equal('');
  });

  describe('access token rules', () => {
    const signWithHeader = (header: Record<string, unknown>, overrides: Record<string, unknown> = {}): string =>
      jwt.sign(claims(overrides), SECRET, { algorithm: 'HS256', header: { alg: 'HS256', ...header } });
    const refused = (token: string): string => detailOf(verifier.verify(token));

    it('refuses any crit header as crit_unsupported, even an empty one', () => {
      for (const crit of [['b64'], ['exp'], [], 'b64']) expect(refused(signWithHeader({ crit })), JSON.stringify(crit)).to.equal('crit_unsupported');
    });

    it('accepts typ JWT and at+jwt in any case, with or without application/', () => {
      for (const typ of ['JWT', 'jwt', 'at+jwt', 'AT+JWT', 'application/at+jwt', 'application/jwt']) expect(refused(signWithHeader({ typ })), typ).to.equal('ok');
    });

    it('refuses another typ header, or one that is not a string, as wrong_type', () => {
      for (const typ of ['secevent+jwt', 'dpop+jwt', 'JOSE', 'application/at+jwt2', '', 1]) expect(refused(signWithHeader({ typ })), String(typ)).to.equal('wrong_type');
    });

    it('accepts type claims naming an access token', () => {
      for (const value of ['access', 'Access_Token', 'at+jwt', 'Bearer']) {
        for (const claim of ['token_use', 'token_type', 'type', 'typ']) expect(refused(signLocal({ [claim]: value })), `${claim}: ${value}`).to.equal('ok');
      }
    });

    it('refuses type claims naming another kind of token as wrong_type', () => {
      for (const value of ['refresh', 'Refresh', 'refresh_token', 'id', 'ID', 'id_token', 'logout', '', 7, ['access']]) {
        for (const claim of ['token_use', 'token_type', 'type', 'typ']) expect(refused(signLocal({ [claim]: value })), `${claim}: ${String(value)}`).to.equal('wrong_type');
      }
    });

    it('refuses iat beyond the clock skew in the future as iat_future, accepts it within', () => {
      expect(refused(signLocal({ iat: NOW + 31 }))).to.equal('iat_future');
      expect(refused(signLocal({ iat: NOW + 30 }))).to.equal('ok');
    });

    it('refuses an iat that is not a number as bad_claims', () => {
      const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims({ iat: 'yesterday' }))}`;
      const signature = createHmac('sha256', SECRET).update(signingInput).digest('base64url');
      expect(refused(`${signingInput}.${signature}`)).to.equal('bad_claims');
    });

    it('refuses exp - iat over max_lifetime (default 24h) as lifetime_too_long, accepts exactly 24h', () => {
      expect(refused(signLocal({ iat: NOW - 10, exp: NOW - 10 + 86401 }))).to.equal('lifetime_too_long');
      expect(refused(signLocal({ iat: NOW - 10, exp: NOW - 10 + 86400 }))).to.equal('ok');
    });

    it('measures a token without iat from now, allowing the clock skew', () => {
      const withoutIat = (exp: number): string => jwt.sign(claims({ iat: undefined, exp }), SECRET, { algorithm: 'HS256', noTimestamp: true });
      expect(refused(withoutIat(NOW + 86400 + 31))).to.equal('lifetime_too_long');
      expect(refused(withoutIat(NOW + 86400 + 30))).to.equal('ok');
    });

    it("follows the issuer's max_lifetime", () => {
      const issuers = issuerConfigs([{ name: 'short', iss: 'local-issuer', algorithms: ['HS256'], secret_env: 'LOCAL_JWT_SECRET', max_lifetime: '5m' }]);
      const short = syncVerifier(new TokenVerifier(loadIssuerKeys(issuers, 'verifier-test.yml', ENV), () => NOW));
      expect(detailOf(short.verify(signLocal({ aud: undefined, iat: NOW, exp: NOW + 301 })))).to.equal('lifetime_too_long');
      expect(detailOf(short.verify(signLocal({ aud: undefined, iat: NOW, exp: NOW + 300 })))).to.equal('ok');
    });

    it('checks the signature first: a forged refresh token is bad_signature', () => {
      expect(refused(signLocal({ token_use: 'refresh' }, OTHER_SECRET))).to.equal('bad_signature');
    });
  });

  describe('loadIssuerKeys', () => {
    it('names the variable of an unset secret', () => {
      expect(() => loadIssuerKeys(ISSUERS, 'verifier-test.yml', {})).to.throw(
        Error,
        /^issuer local: environment variable LOCAL_JWT_SECRET is not set$/,
      );
    });

    it('refuses a secret shorter than 32 bytes', () => {
      expect(() => loadIssuerKeys(ISSUERS, 'verifier-test.yml', { LOCAL_JWT_SECRET: 'x'.repeat(31) })).to.throw(
        Error,
        /^issuer local: LOCAL_JWT_SECRET must hold at least 32 bytes$/,
      );
    });

    it('accepts a secret of exactly 32 bytes', () => {
      const [local] = loadIssuerKeys(ISSUERS.slice(0, 1), 'verifier-test.yml', { LOCAL_JWT_SECRET: 'x'.repeat(32) });
      expect(local?.keys[0]?.key.type).to.equal('secret');
      expect(local?.keys[0]?.key.symmetricKeySize).to.equal(32);
    });

    it('refuses an EC key for RS256', () => {
      const issuers = issuerConfigs([{ name: 'mixed', iss: 'mixed-issuer', algorithms: ['RS256'], public_key: EC_PUBLIC_PEM }]);
      expect(() => loadIssuerKeys(issuers, 'verifier-test.yml', {})).to.throw(Error, /^issuer mixed: the EC prime256v1 key fits none of the algorithms RS256$/);
    });

    it('refuses an RSA key for ES256', () => {
      const issuers = issuerConfigs([{ name: 'mixed', iss: 'mixed-issuer', algorithms: ['ES256'], public_key: RSA_PUBLIC_PEM }]);
      expect(() => loadIssuerKeys(issuers, 'verifier-test.yml', {})).to.throw(Error, /^issuer mixed: the 2048-bit RSA key fits none of the algorithms ES256$/);
    });

    it('names the issuer of a public key it cannot read', () => {
      const issuers = issuerConfigs([{ name: 'broken', iss: 'broken-issuer', algorithms: ['RS256'], public_key: 'not a pem' }]);
      expect(() => loadIssuerKeys(issuers, 'verifier-test.yml', {})).to.throw(Error, /^issuer broken: cannot read public key: /);
    });
  });
});
