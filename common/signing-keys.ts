/**
 * The sidecar's own signing keys, kept in one Redis hash (RedisKeys.signingKeys) shared by every
 * sidecar; written by the first sidecar to start and by `npm run admin -- keys rotate`.
 *
 * Fields: `key:<kid>` holds a key's JSON record (public JWK, private key encrypted, algorithm,
 * creation time), `current` the kid new tokens are signed with, `retired:<kid>` when a key
 * stopped being current (unix ms). A retired key still verifies, and is published in the JWKS,
 * until its last token has expired (retired + the access token lifetime + the clock skew).
 *
 * The private key is encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from
 * SIGNING_KEY_SECRET, the kid bound as associated data, so a record cannot be moved to another kid.
 * The kid is the key's RFC 7638 thumbprint.
 */
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './config/schema.js';
import type { RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

/** SIGNING_KEY_SECRET's least length, in characters. */
export const MIN_SIGNING_SECRET_CHARS = 32;

export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  public_jwk: Record<string, string>;
  /** base64 of iv (12 bytes) | tag (16 bytes) | ciphertext of the PKCS#8 DER private key. */
  private_key: string;
  /** Unix ms. */
  created_at: number;
}

export interface StoredSigningKey {
  record: SigningKeyRecord;
  /** Unix ms when it stopped being current; undefined for the current key. */
  retiredAt: number | undefined;
}

export interface SigningKeySet {
  current: string | undefined;
  keys: StoredSigningKey[];
}

/** Thrown when SIGNING_KEY_SECRET cannot open a stored private key. */
export class SigningSecretError extends Error {
  constructor(kid: string) {
    super(`SIGNING_KEY_SECRET does not decrypt signing key ${kid}: is it the secret the keys were made with?`);
    this.name = 'SigningSecretError';
  }
}

function encryptionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'gateway-signing-keys', 'aes-256-gcm private key', 32));
}

/** RFC 7638 thumbprint of a public EC or OKP JWK, base64url. */
function thumbprint(jwk: Record<string, string>): string {
  const members = jwk['kty'] === 'EC' ? { crv: jwk['crv'], kty: jwk['kty'], x: jwk['x'], y: jwk['y'] } : { crv: jwk['crv'], kty: jwk['kty'], x: jwk['x'] };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** A new key pair for `alg`, its private half encrypted under `secret`. */
export function newSigningKey(alg: SigningAlgorithm, secret: string, now = Date.now()): SigningKeyRecord {
  const { publicKey, privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const kid = thumbprint(jwk);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secret), iv);
  cipher.setAAD(Buffer.from(kid));
  const sealed = Buffer.concat([cipher.update(privateKey.export({ format: 'der', type: 'pkcs8' })), cipher.final()]);
  return {
    kid,
    alg,
    public_jwk: { ...jwk, kid, alg, use: 'sig' },
    private_key: Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64'),
    created_at: now,
  };
}

/** The record's private key; throws SigningSecretError when `secret` is not the one it was sealed with. */
export function openPrivateKey(record: SigningKeyRecord, secret: string): KeyObject {
  const bytes = Buffer.from(record.private_key, 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey(secret), bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(record.kid));
    decipher.setAuthTag(bytes.subarray(12, 28));
    const der = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw new SigningSecretError(record.kid);
  }
}

export function publicKeyOf(record: SigningKeyRecord): KeyObject {
  return createPublicKey({ key: record.public_jwk, format: 'jwk' });
}

/** Adds the key and makes it current only when there is no current key yet. Returns the current kid. */
const ADD_FIRST = `
local current = redis.call('HGET', KEYS[1], 'current')
if current then return current end
redis.call('HSET', KEYS[1], 'key:' .. ARGV[1], ARGV[2], 'current', ARGV[1])
return ARGV[1]`;

/** Adds the key, makes it current and retires the one before (at ARGV[3], unix ms). Returns the retired kid or false. */
const ROTATE = `
local old = redis.call('HGET', KEYS[1], 'current')
redis.call('HSET', KEYS[1], 'key:' .. ARGV[1], ARGV[2], 'current', ARGV[1])
if old and old ~= ARGV[1] then redis.call('HSET', KEYS[1], 'retired:' .. old, ARGV[3]) return old end
return false`;

export class SigningKeyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async read(): Promise<SigningKeySet> {
    const fields = await this.redis.hgetall(this.keys.signingKeys);
    const keys: StoredSigningKey[] = [];
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith('key:')) continue;
      const record = JSON.parse(value) as SigningKeyRecord;
      const retired = fields[`retired:${record.kid}`];
      keys.push({ record, retiredAt: retired === undefined ? undefined : Number(retired) });
    }
    keys.sort((a, b) => b.record.created_at - a.record.created_at);
    return { current: fields['current'], keys };
  }

  /** Makes a key current if none is (the first sidecar to start); resolves the current kid, this one or another sidecar's. */
  async ensureCurrent(alg: SigningAlgorithm, secret: string): Promise<string> {
    const record = newSigningKey(alg, secret);
    return (await this.redis.eval(ADD_FIRST, 1, this.keys.signingKeys, record.kid, JSON.stringify(record))) as string;
  }

  /** A new current key; the one before retires now. Resolves both kids. */
  async rotate(alg: SigningAlgorithm, secret: string, now = Date.now()): Promise<{ kid: string; retired: string | undefined }> {
    const record = newSigningKey(alg, secret, now);
    const retired = (await this.redis.eval(ROTATE, 1, this.keys.signingKeys, record.kid, JSON.stringify(record), String(now))) as string | null;
    return { kid: record.kid, retired: retired ?? undefined };
  }

  /** Deletes the retired keys whose tokens have all expired (retired before `before`, unix ms). Resolves their kids. */
  async purgeRetiredBefore(before: number): Promise<string[]> {
    const { keys } = await this.read();
    const gone = keys.filter((k) => k.retiredAt !== undefined && k.retiredAt < before).map((k) => k.record.kid);
    if (gone.length > 0) await this.redis.hdel(this.keys.signingKeys, ...gone.flatMap((kid) => [`key:${kid}`, `retired:${kid}`]));
    return gone;
  }
}

/** Until when (unix ms) a key's tokens may be valid: forever for the current key. */
export function publishedUntil(key: StoredSigningKey, accessTtlSeconds: number, skewSeconds: number): number {
  return key.retiredAt === undefined ? Infinity : key.retiredAt + (accessTtlSeconds + skewSeconds) * 1000;
}
