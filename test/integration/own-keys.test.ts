/**
 * The sidecar's own signing keys against a real Redis: sealed at rest, shared by two sidecars,
 * taken up after a rotation without a failed token, dropped once their last token has expired,
 * refused with the wrong secret, and 100 tokens naming unknown kids read Redis at most twice.
 */
import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { parseConfig } from '../../common/config/load.js';
import { ownIssuerOf, type GatewayConfig } from '../../common/config/schema.js';
import { silentLogger } from '../../common/logger.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { openPrivateKey, SigningKeyStore, SigningSecretError } from '../../common/signing-keys.js';
import { signAccessToken } from '../../auth-sidecar/issuing/access-token.js';
import { OwnKeys } from '../../auth-sidecar/issuing/own-keys.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { TokenVerifier, type VerifyResult } from '../../auth-sidecar/jwt/verifier.js';
import { TestRedis } from '../helpers/redis-server.js';

const SECRET = 'own-keys-test-secret-0123456789abcdef';
const USER = { username: 'alice', groups: ['staff'], tier: undefined };

/** Counts the reads of the key set. */
class CountingStore extends SigningKeyStore {
  reads = 0;
  override read(): ReturnType<SigningKeyStore['read']> {
    this.reads++;
    return super.read();
  }
}

describe('own signing keys (Redis)', function () {
  this.timeout(20_000);
  let server: TestRedis;
  let redis: Redis;
  let keys: RedisKeys;
  let config: GatewayConfig;
  const started: OwnKeys[] = [];

  before(async () => {
    server = await TestRedis.start();
    redis = new Redis(server.url);
    config = parseConfig(`
issuers:
  - { name: local, iss: "http://gw.test", audience: api, algorithms: [ES256, EdDSA], sidecar_keys: true, clock_skew_seconds: 10 }
token_issuing: { access_token_ttl: 60 }
routes:
  - { name: auth, paths: [/auth], serve: token_endpoints, auth: none }
`);
  });
  beforeEach(async () => {
    keys = new RedisKeys(`ok${Math.random().toString(36).slice(2, 8)}`);
  });
  afterEach(() => started.splice(0).forEach((k) => k.stop()));
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  const own = () => ownIssuerOf(config)!;
  async function start(store: SigningKeyStore, now: () => number = Date.now, secret = SECRET): Promise<OwnKeys> {
    const k = new OwnKeys(store, own().issuer, own().issuing, secret, silentLogger(), now);
    await k.start();
    started.push(k);
    return k;
  }
  const verifierOf = (k: OwnKeys) => new TokenVerifier(loadIssuerKeys(config.issuers, 'test.yml', {}, silentLogger(), k));
  const verdict = async (v: TokenVerifier, token: string): Promise<string> => {
    const r: VerifyResult = await v.verify(token);
    return r.ok ? 'ok' : r.detail;
  };

  it('makes one key for every sidecar, keeps its private half sealed, and signs tokens that verify', async () => {
    const store = new SigningKeyStore(redis, keys);
    const [a, b] = await Promise.all([start(store), start(store)]);
    expect(a.signingKey.kid).to.equal(b.signingKey.kid);
    const stored = await redis.hgetall(keys.signingKeys);
    expect(Object.keys(stored).filter((f) => f.startsWith('key:'))).to.have.length(1);
    const record = JSON.parse(stored[`key:${a.signingKey.kid}`]!) as { public_jwk: Record<string, string>; private_key: string };
    expect(record.public_jwk).not.to.have.property('d');
    // The PKCS#8 DER of a P-256 key starts with 0x30 0x81 0x87: sealed, it is not there.
    expect(Buffer.from(record.private_key, 'base64').includes(Buffer.from([0x30, 0x81, 0x87, 0x02, 0x01, 0x00]))).to.equal(false);

    const token = signAccessToken(a.signingKey, own().issuer, 60, USER).token;
    expect(await verdict(verifierOf(b), token)).to.equal('ok');
  });

  it('refuses to start with a secret that does not open the current key', async () => {
    const store = new SigningKeyStore(redis, keys);
    await start(store);
    let failure: unknown;
    await start(store, Date.now, 'another-secret-entirely-0123456789abcdef').catch((err: unknown) => (failure = err));
    expect(failure).to.be.instanceOf(SigningSecretError);
    expect((failure as Error).message).to.include('SIGNING_KEY_SECRET does not decrypt signing key');
  });

  it('after a rotation, a token of the new key verifies at once on a sidecar that has not re-read yet', async () => {
    const store = new SigningKeyStore(redis, keys);
    const signer = await start(store);
    const verifying = await start(store);
    const { kid } = await store.rotate('ES256', SECRET);
    const record = (await store.read()).keys.find((k) => k.record.kid === kid)!.record;
    const token = signAccessToken({ kid, alg: 'ES256', key: openPrivateKey(record, SECRET) }, own().issuer, 60, USER).token;
    // The unknown kid makes the verifying sidecar read the keys now, not in 5 s.
    expect(await verdict(verifierOf(verifying), token)).to.equal('ok');
    expect(signer.signingKey.kid).not.to.equal(kid); // the signer still uses the old key until its next read
  });

  it('drops a retired key once its last token has expired (access ttl + clock skew), from verification and the JWKS', async () => {
    let now = Date.now();
    const store = new SigningKeyStore(redis, keys);
    const k = await start(store, () => now);
    const old = signAccessToken(k.signingKey, own().issuer, 60, USER, now).token;
    const oldKid = k.signingKey.kid;
    await store.rotate('ES256', SECRET, now);
    now += 1_500; // past the unknown-kid interval: the next unknown kid re-reads
    await k.fetchForUnknownKid();
    expect(k.jwks.keys.map((j) => j['kid'])).to.include(oldKid).and.have.length(2);
    expect(k.signingKey.kid).not.to.equal(oldKid);

    now += 69_000; // retired 70.5 s ago: past 60 s + 10 s
    await k.fetchForUnknownKid();
    expect(k.jwks.keys.map((j) => j['kid'])).not.to.include(oldKid);
    expect(k.current.map((key) => key.kid)).not.to.include(oldKid);
    expect(old).to.be.a('string');
    const purged = await store.purgeRetiredBefore(now - 70_000);
    expect(purged).to.deep.equal([oldKid]);
  });

  it('100 tokens naming unknown kids read the keys at most once more', async () => {
    const store = new CountingStore(redis, keys);
    const k = await start(store);
    const readsAtStart = store.reads;
    const verifier = verifierOf(k);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verdicts = await Promise.all(
      Array.from({ length: 100 }, (_, i) => verdict(verifier, signAccessToken({ kid: `stranger-${i}`, alg: 'ES256', key: privateKey }, own().issuer, 60, USER).token)),
    );
    expect(new Set(verdicts)).to.deep.equal(new Set(['kid_unknown']));
    expect(store.reads - readsAtStart).to.be.at.most(1);
  });
});
