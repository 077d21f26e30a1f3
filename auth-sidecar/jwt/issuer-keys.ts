/**
 * Every issuer's verification keys, loaded once at start as KeyObjects (40x faster to verify
 * with than a PEM string), each with the algorithms it may check: the issuer's allow-list cut
 * down to what fits the key (key-fit.ts). A key fitting none of them, or an allowed algorithm no
 * key fits, stops the sidecar with a message naming the issuer and the key.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KEY_SOURCES, type IssuerConfig, type KeySourceConfig } from '../../common/config/schema.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import { issuerKey, keyOfJwk } from './jwk-key.js';
import { JwksKeys } from './jwks-keys.js';
import { describeKey, MIN_HMAC_BYTES, type IssuerKey } from './key-fit.js';

export type { IssuerKey } from './key-fit.js';

/** Keys that change while the sidecar runs: an issuer's JWKS, or the sidecar's own keys in Redis. */
export interface RefreshingKeys {
  readonly current: readonly IssuerKey[];
  /** False until the first keys have been read. */
  readonly ready: boolean;
  /** For a token naming a kid the keys lack: a (rate-limited) read that may bring it; undefined when none may start. */
  fetchForUnknownKid(): Promise<void> | undefined;
  stop(): void;
}

export interface TrustedIssuer {
  readonly config: IssuerConfig;
  /** The keys now: static ones, or the refreshing keys' current ones. */
  readonly keys: readonly IssuerKey[];
  /** Set for an issuer with `jwks_url` or `sidecar_keys`. */
  readonly refreshing?: RefreshingKeys;
}

/**
 * Every issuer's keys. An issuer with `jwks_url` gets a JwksKeys whose first fetch starts now
 * (`logger` reports fetches that fail); tokens wait for it, up to its timeout. The issuer with
 * `sidecar_keys` gets `ownKeys` (auth-sidecar/issuing/own-keys.ts).
 */
export function loadIssuerKeys(
  issuers: readonly IssuerConfig[],
  configFile: string,
  env: NodeJS.ProcessEnv = process.env,
  logger: Logger = silentLogger(),
  ownKeys?: RefreshingKeys,
): TrustedIssuer[] {
  return issuers.map((config) => {
    if (config.sidecar_keys) {
      if (!ownKeys) throw new Error(`issuer ${config.name}: sidecar_keys needs the sidecar's signing keys`);
      return refreshingIssuer(config, ownKeys);
    }
    if (config.jwks_url === undefined) return { config, keys: loadKeys(config, configFile, env) };
    return refreshingIssuer(config, new JwksKeys(config, config.jwks_url, logger));
  });
}

function refreshingIssuer(config: IssuerConfig, refreshing: RefreshingKeys): TrustedIssuer {
  return {
    config,
    refreshing,
    get keys() {
      return refreshing.current;
    },
  };
}

/** The issuer's key sources: its `keys`, or the one source written on the issuer itself. */
function sourcesOf(issuer: IssuerConfig): KeySourceConfig[] {
  return issuer.keys ?? [{ kid: undefined, ...Object.fromEntries(KEY_SOURCES.map((k) => [k, issuer[k]])), secret_encoding: issuer.secret_encoding }];
}

function loadKeys(issuer: IssuerConfig, configFile: string, env: NodeJS.ProcessEnv): IssuerKey[] {
  const sources = sourcesOf(issuer);
  const keys = sources.map((source, i) => {
    const where = `issuer ${issuer.name}${issuer.keys ? ` key ${source.kid ?? i}` : ''}`;
    return issuerKey(loadKey(source, where, configFile, env), issuer, where, source.jwk, source.kid);
  });
  for (const alg of issuer.algorithms) {
    if (!keys.some((k) => k.algorithms.has(alg))) throw new Error(`issuer ${issuer.name}: no key fits ${alg}: ${keys.map((k) => describeKey(k.key)).join(', ')}`);
  }
  return keys;
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
