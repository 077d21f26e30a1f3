/**
 * Which algorithms a key may ever check (RFC 7518, RFC 8037): a key is only used with the
 * algorithms that fit its type, size and curve, whatever a token's header asks for.
 * - secret (HMAC, at least 32 bytes): HS256, HS384, HS512
 * - RSA, at least 2048 bits: RS256/384/512 and PS256/384/512 (an RSA-PSS key: PS only)
 * - EC: ES256 on P-256, ES384 on P-384, ES512 on P-521
 * - Ed25519: EdDSA
 */
import type { KeyObject } from 'node:crypto';
import { HMAC_ALGORITHMS, type Algorithm } from '../../common/config/schema.js';

/** One key of an issuer and the algorithms it may check. */
export interface IssuerKey {
  kid: string | undefined;
  key: KeyObject;
  algorithms: ReadonlySet<Algorithm>;
}

export const MIN_HMAC_BYTES = 32;
export const MIN_RSA_BITS = 2048;

const EC_CURVES: Record<string, Algorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const RSA_PKCS1: Algorithm[] = ['RS256', 'RS384', 'RS512'];
const RSA_PSS: Algorithm[] = ['PS256', 'PS384', 'PS512'];

/** The key's kind for messages, e.g. `EC P-256 key`, `2048-bit RSA key`. */
export function describeKey(key: KeyObject): string {
  if (key.type === 'secret') return `${key.symmetricKeySize}-byte secret`;
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return `EC ${details.namedCurve ?? '?'} key`;
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') return `${details.modulusLength ?? '?'}-bit ${key.asymmetricKeyType.toUpperCase()} key`;
  return `${key.asymmetricKeyType ?? 'unknown'} key`;
}

/** The algorithms of `allowed` that `key` fits, in `allowed`'s order; throws for a key too weak to use at all. */
export function fittingAlgorithms(key: KeyObject, allowed: readonly Algorithm[], where: string): Algorithm[] {
  const fits = fitsOf(key, where);
  return allowed.filter((alg) => fits.includes(alg));
}

function fitsOf(key: KeyObject, where: string): readonly Algorithm[] {
  if (key.type === 'secret') {
    if ((key.symmetricKeySize ?? 0) < MIN_HMAC_BYTES) throw new Error(`${where}: an HMAC key needs at least ${MIN_HMAC_BYTES} bytes, this one has ${key.symmetricKeySize}`);
    return HMAC_ALGORITHMS;
  }
  if (key.type !== 'public') throw new Error(`${where}: a verification key must be public, not ${key.type}`);
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`${where}: an RSA key needs at least ${MIN_RSA_BITS} bits, this one has ${details.modulusLength}`);
      return key.asymmetricKeyType === 'rsa' ? [...RSA_PKCS1, ...RSA_PSS] : RSA_PSS;
    case 'ec': {
      const alg = EC_CURVES[details.namedCurve ?? ''];
      if (!alg) throw new Error(`${where}: EC curve ${details.namedCurve} is not one of P-256, P-384, P-521`);
      return [alg];
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      throw new Error(`${where}: ${key.asymmetricKeyType} keys are not supported (RSA, EC P-256/384/521, Ed25519)`);
  }
}
