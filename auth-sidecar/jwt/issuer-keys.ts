/**
 * Every issuer's verification keys, loaded once at start as KeyObjects (40x faster to verify
 * with than a PEM string), each with the algorithms it may check: the issuer's allow-list cut
 * down to what fits the key (key-fit.ts). A key fitting none of them, or an allowed algorithm no
 * key fits, stops the sidecar with a message naming the issuer and the key.
 */
import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KEY_SOURCES, type Algorithm, type IssuerConfig, type KeySourceConfig } from '../../common/config/schema.js';
import { describeKey, fittingAlgorithms, MIN_HMAC_BYTES } from './key-fit.js';

/** One key of an issuer and the algorithms it may check. */
export interface IssuerKey {
  kid: string | undefined;
  key: KeyObject;
  algorithms: ReadonlySet<Algorithm>;
}

export interface TrustedIssuer {
  readonly config: IssuerConfig;
  readonly keys: readonly IssuerKey[];
}

export function loadIssuerKeys(issuers: readonly IssuerConfig[], configFile: string, env: NodeJS.ProcessEnv = process.env): TrustedIssuer[] {
  return issuers.map((config) => ({ config, keys: loadKeys(config, configFile, env) }));
}

/** The issuer's key sources: its `keys`, or the one source written on the issuer itself. */
function sourcesOf(issuer: IssuerConfig): KeySourceConfig[] {
  return issuer.keys ?? [{ kid: undefined, ...Object.fromEntries(KEY_SOURCES.map((k) => [k, issuer[k]])), secret_encoding: issuer.secret_encoding }];
}

function loadKeys(issuer: IssuerConfig, configFile: string, env: NodeJS.ProcessEnv): IssuerKey[] {
  const sources = sourcesOf(issuer);
  const keys = sources.map((source, i) => {
    const where = `issuer ${issuer.name}${issuer.keys ? ` key ${source.kid ?? i}` : ''}`;
    const key = loadKey(source, where, configFile, env);
    const jwkAlg = source.jwk?.['alg'];
    const algorithms = fittingAlgorithms(key, issuer.algorithms, where).filter((alg) => jwkAlg === undefined || jwkAlg === alg);
    if (algorithms.length === 0) throw new Error(`${where}: the ${describeKey(key)} fits none of the algorithms ${issuer.algorithms.join(',')}${jwkAlg === undefined ? '' : ` (its jwk says alg ${String(jwkAlg)})`}`);
    return { kid: source.kid ?? jwkKid(source), key, algorithms: new Set(algorithms) };
  });
  for (const alg of issuer.algorithms) {
    if (!keys.some((k) => k.algorithms.has(alg))) throw new Error(`issuer ${issuer.name}: no key fits ${alg}: ${keys.map((k) => describeKey(k.key)).join(', ')}`);
  }
  return keys;
}

function jwkKid(source: KeySourceConfig): string | undefined {
  const kid = source.jwk?.['kid'];
  return typeof kid === 'string' && kid !== '' ? kid : undefined;
}

function loadKey(source: KeySourceConfig, where: string, configFile: string, env: NodeJS.ProcessEnv): KeyObject {
  if (source.secret_env !== undefined) {
    const secret = env[source.secret_env];
    if (!secret) throw new Error(`${where}: environment variable ${source.secret_env} is not set`);
    const bytes = source.secret_encoding === 'base64' ? Buffer.from(secret, 'base64') : Buffer.from(secret);
    if (bytes.length < MIN_HMAC_BYTES) throw new Error(`${where}: ${source.secret_env} must hold at least ${MIN_HMAC_BYTES} bytes${source.secret_encoding === 'base64' ? ' once decoded' : ''}`);
    return createSecretKey(bytes);
  }
  if (source.jwk !== undefined) return keyOfJwk(source.jwk, where);
  const pem = source.public_key ?? readFileSync(resolve(dirname(configFile), source.public_key_file ?? ''), 'utf8');
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new Error(`${where}: cannot read public key: ${(err as Error).message}`);
  }
}

/** A verification key from a JWK: never a private one, only for signatures. */
function keyOfJwk(jwk: Record<string, unknown>, where: string): KeyObject {
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
