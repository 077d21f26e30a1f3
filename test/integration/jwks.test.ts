/**
 * An issuer's keys from a JWKS URL, against a local JWKS server whose keys the test rotates:
 * a rotation costs no failed request, unknown kids cause at most one fetch per interval, the
 * answer's Cache-Control is followed within bounds, a failing server leaves the last good keys
 * serving, a token's jku is never fetched, and what a JWKS must not hold is skipped.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { parseConfig } from '../../common/config/load.js';
import { loadIssuerKeys, type TrustedIssuer } from '../../auth-sidecar/jwt/issuer-keys.js';
import { TokenVerifier, type VerifyResult } from '../../auth-sidecar/jwt/verifier.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { JwksServer, jwksPair as pair } from '../helpers/jwks-server.js';
import { eventually } from '../helpers/net.js';

const token = (key: { kid: string; privateKey: KeyObject }, header: Record<string, unknown> = {}) =>
  jwt.sign({ iss: 'idp', sub: 'alice' }, key.privateKey, { algorithm: 'ES256', expiresIn: 300, header: { alg: 'ES256', kid: key.kid, ...header } as jwt.JwtHeader });
const detail = async (r: VerifyResult | Promise<VerifyResult>): Promise<string> => {
  const result = await r;
  return result.ok ? 'ok' : result.detail;
};

describe('JWKS keys', function () {
  this.timeout(20_000);
  let server: JwksServer;
  let issuer: TrustedIssuer;
  let verifier: TokenVerifier;
  let logs: Record<string, unknown>[];

  const load = (jwks: Record<string, number>) => {
    const capture = captureLogger();
    logs = capture.lines;
    const config = parseConfig(
      JSON.stringify({ issuers: [{ name: 'idp', iss: 'idp', algorithms: ['ES256'], jwks_url: server.url, jwks }], routes: [{ name: 'r', paths: ['/r'], upstream: 'http://127.0.0.1:1' }] }),
      'jwks-test.yml',
      {},
    );
    issuer = loadIssuerKeys(config.issuers, 'jwks-test.yml', {}, capture.logger)[0]!;
    verifier = new TokenVerifier([issuer]);
  };

  beforeEach(async () => {
    server = await JwksServer.start();
  });
  afterEach(async () => {
    issuer?.refreshing?.stop();
    await server.close();
  });

  it('takes a rotated-in key on its first token without a failed request, and drops a rotated-out one on refresh', async () => {
    const [k1, k2] = [pair('k1'), pair('k2')];
    server.published = { status: 200, keys: [k1.jwk], cacheControl: 'max-age=1' };
    load({ min_ttl_seconds: 1, unknown_kid_interval_seconds: 1 });
    expect(await detail(verifier.verify(token(k1)))).to.equal('ok');
    server.published = { status: 200, keys: [k1.jwk, k2.jwk], cacheControl: 'max-age=1' };
    expect(await detail(verifier.verify(token(k2))), 'the first k2 token, before any refresh').to.equal('ok');
    server.published = { status: 200, keys: [k2.jwk], cacheControl: 'max-age=1' };
    await eventually(async () => ((await detail(verifier.verify(token(k1)))) === 'kid_unknown' ? true : undefined), 5_000, 'k1 to be dropped');
    expect(await detail(verifier.verify(token(k2)))).to.equal('ok');
  });

  it('fetches at most once per interval for tokens naming unknown kids, however many come', async () => {
    server.published = { status: 200, keys: [pair('known').jwk] };
    load({ unknown_kid_interval_seconds: 10 });
    await eventually(() => (issuer.refreshing!.ready ? true : undefined), 5_000, 'the first fetch');
    const before = server.fetches;
    const strangers = Array.from({ length: 100 }, (_, i) => pair(`stranger-${i}`));
    const details = await Promise.all(strangers.map((k) => detail(verifier.verify(token(k)))));
    expect(new Set(details)).to.deep.equal(new Set(['kid_unknown']));
    const more = await Promise.all(strangers.map((k) => detail(verifier.verify(token(k)))));
    expect(new Set(more)).to.deep.equal(new Set(['kid_unknown']));
    expect(server.fetches - before, '200 tokens with unknown kids').to.equal(1);
  });

  it("follows the answer's Cache-Control within min_ttl_seconds and max_ttl_seconds", async () => {
    server.published = { status: 200, keys: [pair('a').jwk], cacheControl: 'public, max-age=86400' };
    load({ min_ttl_seconds: 1, max_ttl_seconds: 2 });
    await eventually(() => (server.fetches === 1 ? true : undefined), 5_000, 'the first fetch');
    const first = Date.now();
    await eventually(() => (server.fetches === 2 ? true : undefined), 6_000, 'a refresh capped at max_ttl_seconds');
    expect(Date.now() - first).to.be.within(1_500, 4_000);
    server.published.cacheControl = 'max-age=0';
    const second = Date.now();
    await eventually(() => (server.fetches === 3 ? true : undefined), 6_000, 'a refresh held to min_ttl_seconds');
    expect(Date.now() - second, 'max-age=0 is held to min_ttl_seconds').to.be.within(500, 4_000);
  });

  it('keeps serving the last good keys while the server fails, retrying after the cooldown, and logs it', async () => {
    const k1 = pair('k1');
    server.published = { status: 200, keys: [k1.jwk], cacheControl: 'max-age=1' };
    load({ min_ttl_seconds: 1, failure_cooldown_seconds: 1 });
    expect(await detail(verifier.verify(token(k1)))).to.equal('ok');
    server.published = { status: 500, keys: [] };
    await eventually(() => (logs.some((l) => l['code'] === 'jwks_fetch_failed') ? true : undefined), 5_000, 'a failed fetch');
    expect(await detail(verifier.verify(token(k1))), 'after the failure').to.equal('ok');
    const failedAt = server.fetches;
    await eventually(() => (server.fetches > failedAt ? true : undefined), 5_000, 'the retry after the cooldown');
    expect(logs.find((l) => l['code'] === 'jwks_fetch_failed')).to.include({ issuer: 'idp', error: 'answered 500', keys: 1 });
  });

  it('answers jwks_unavailable (503, not 401) while the JWKS has never been fetched', async () => {
    server.published = { status: 503, keys: [] };
    load({ unknown_kid_interval_seconds: 1 });
    expect(await detail(verifier.verify(token(pair('k1'))))).to.equal('jwks_unavailable');
  });

  it('never fetches a jku or x5u a token names, and never takes the jwk it carries', async () => {
    const k1 = pair('k1');
    const attacker = pair('k1');
    server.published = { status: 200, keys: [k1.jwk] };
    load({});
    const base = server.url.replace('/jwks.json', '');
    const forged = token(attacker, { jku: `${base}/evil-jwks.json`, x5u: `${base}/evil.pem`, jwk: attacker.jwk });
    expect(await detail(verifier.verify(forged))).to.equal('bad_signature');
    expect(server.asked.filter((p) => p !== '/jwks.json')).to.deep.equal([]);
  });

  it('skips what a JWKS must not hold (a secret, a private key, a key for encryption, a weak or unfitting key) and uses the rest', async () => {
    const good = pair('good');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    server.published = {
      status: 200,
      keys: [
        { kty: 'oct', kid: 'secret', k: Buffer.alloc(32, 1).toString('base64url') },
        { ...ec.privateKey.export({ format: 'jwk' }), kid: 'private' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'enc', use: 'enc' },
        { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'weak' },
        { ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid: 'ed' },
        'not an object',
        good.jwk,
      ],
    };
    load({});
    expect(await detail(verifier.verify(token(good)))).to.equal('ok');
    expect(issuer.keys.map((k) => k.kid)).to.deep.equal(['good']);
    expect(logs.filter((l) => l['code'] === 'jwks_key_skipped')).to.have.length(6);
  });
});
