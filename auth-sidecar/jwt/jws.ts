/**
 * Compact JWS (RFC 7515) read and checked with node:crypto alone, for every algorithm the
 * sidecar accepts: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA
 * (Ed25519, RFC 8037). Which key may check which algorithm is decided by key-fit.ts; this only
 * computes. Nothing here follows a header's `jku`, `x5u` or `jwk`: the key always comes from
 * the issuer's configuration.
 */
import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { Algorithm } from '../../common/config/schema.js';

export interface DecodedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** `<header>.<payload>` as sent: what the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/** Header and payload of a compact JWS, unverified; undefined unless both are JSON objects. */
export function decodeJws(token: string): DecodedJws | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  const header = jsonObject(token.slice(0, first));
  const payload = jsonObject(token.slice(first + 1, second));
  if (!header || !payload) return undefined;
  return { header, payload, signingInput: token.slice(0, second), signature: Buffer.from(token.slice(second + 1), 'base64url') };
}

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const HASH = { '256': 'sha256', '384': 'sha384', '512': 'sha512' } as const;
/** ES signatures are r || s, each the curve's size in bytes (RFC 7518 §3.4). */
const EC_SIGNATURE_BYTES = { ES256: 64, ES384: 96, ES512: 132 } as const;

/** Whether `signature` is `alg` over `signingInput` with `key`. Never throws on hostile input. */
export function verifyJws(alg: Algorithm, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  const data = Buffer.from(signingInput);
  const hash = HASH[alg.slice(2) as keyof typeof HASH];
  try {
    switch (alg.slice(0, 2)) {
      case 'HS': {
        const expected = createHmac(hash, key).update(data).digest();
        return expected.length === signature.length && timingSafeEqual(expected, signature);
      }
      case 'RS':
        return verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'PS':
        return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
      case 'ES':
        return signature.length === EC_SIGNATURE_BYTES[alg as keyof typeof EC_SIGNATURE_BYTES] && verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'Ed':
        return verify(null, data, key, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}
