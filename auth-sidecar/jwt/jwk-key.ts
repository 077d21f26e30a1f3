/** Verification keys from JWKs (RFC 7517), for `jwk` key sources and JWKS URLs alike. */
import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Algorithm, IssuerConfig } from '../../common/config/schema.js';
import { describeKey, fittingAlgorithms, type IssuerKey } from './key-fit.js';

/**
 * One key of a JWKS or a `jwk` source, with the issuer's algorithms it fits (and its own `alg`,
 * when set, allows). Throws with `where` when it cannot be used.
 */
export function keyOfIssuerJwk(jwk: Record<string, unknown>, issuer: IssuerConfig, where: string): IssuerKey {
  return issuerKey(keyOfJwk(jwk, where), issuer, where, jwk);
}

/**
 * A loaded key as an issuer's: its kid (`kid`, else the jwk's) and the issuer's algorithms it
 * fits, cut to the jwk's own `alg` when it names one. Throws when it fits none.
 */
export function issuerKey(key: KeyObject, issuer: IssuerConfig, where: string, jwk?: Record<string, unknown>, kid?: string): IssuerKey {
  return { kid: kid ?? (jwk && jwkKid(jwk)), key, algorithms: new Set(algorithmsFor(key, issuer, where, jwk?.['alg'])) };
}

function algorithmsFor(key: KeyObject, issuer: IssuerConfig, where: string, jwkAlg: unknown): Algorithm[] {
  const algorithms = fittingAlgorithms(key, issuer.algorithms, where).filter((alg) => jwkAlg === undefined || jwkAlg === alg);
  if (algorithms.length === 0) throw new Error(`${where}: the ${describeKey(key)} fits none of the algorithms ${issuer.algorithms.join(',')}${jwkAlg === undefined ? '' : ` (its jwk says alg ${String(jwkAlg)})`}`);
  return algorithms;
}

function jwkKid(jwk: Record<string, unknown>): string | undefined {
  const kid = jwk['kid'];
  return typeof kid === 'string' && kid !== '' ? kid : undefined;
}

/** A verification key from a JWK: never a private one, only for signatures. */
export function keyOfJwk(jwk: Record<string, unknown>, where: string): KeyObject {
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') throw new Error(`${where}: the jwk is for use ${String(jwk['use'])}, not sig`);
  if (jwk['kty'] === 'oct') {
    if (typeof jwk['k'] !== 'string') throw new Error(`${where}: an oct jwk needs k`);
    return createSecretKey(Buffer.from(jwk['k'], 'base64url'));
  }
  if (jwk['d'] !== undefined) throw new Error(`${where}: the jwk holds a private key: give its public part only`);
  try {
    return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new Error(`${where}: cannot read the jwk: ${(err as Error).message}`);
  }
}
