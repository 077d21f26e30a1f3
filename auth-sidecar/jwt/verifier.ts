import type { JwtPayload } from 'jsonwebtoken';
import type { Algorithm } from '../../common/config/schema.js';
import type { TokenInvalidDetail } from '../../common/errors.js';
import { accessTokenProblem } from './access-token-rules.js';
import { readIdentity, type TokenIdentity } from './claims.js';
import type { IssuerKey, TrustedIssuer } from './issuer-keys.js';
import { decodeJws, verifyJws, type DecodedJws } from './jws.js';

/** `jwks_unavailable`: the issuer's JWKS has never been fetched; the check answers 503 auth_unavailable, not 401. */
export type VerifyResult = { ok: true; identity: TokenIdentity } | { ok: false; detail: TokenInvalidDetail | 'jwks_unavailable' };

const COMPACT_JWS = /^[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{2,16384}\.[A-Za-z0-9_-]{0,2048}$/;

/** Keys a token without `kid` is tried against, at most: each try of an RSA key costs ~30 µs. */
export const MAX_KEYS_TRIED = 4;

/**
 * Verifies compact JWS tokens against the configured issuers. The issuer is picked by the
 * unverified `iss`, then everything is checked against that issuer's keys and allow-list only:
 * a token can never choose its own algorithm or key. A token naming a `kid` is checked against
 * that key alone; one without, against the first MAX_KEYS_TRIED keys that fit its algorithm.
 */
export class TokenVerifier {
  private readonly byIss: Map<string, TrustedIssuer>;

  constructor(issuers: readonly TrustedIssuer[], private readonly nowSeconds: () => number = () => Date.now() / 1000) {
    this.byIss = new Map(issuers.map((i) => [i.config.iss, i]));
  }

  /**
   * The verdict, at once; or, when the token names a kid (or algorithm) an issuer's JWKS lacks,
   * once the fetch that may bring it has ended (rate limited: see jwks-keys.ts).
   */
  verify(token: string): VerifyResult | Promise<VerifyResult> {
    if (!COMPACT_JWS.test(token)) return { ok: false, detail: 'malformed' };
    const decoded = decodeJws(token);
    if (!decoded) return { ok: false, detail: 'malformed' };
    const { header, payload } = decoded;
    const issuer = typeof payload['iss'] === 'string' ? this.byIss.get(payload['iss']) : undefined;
    if (!issuer) return { ok: false, detail: 'unknown_issuer' };
    const alg = header['alg'];
    if (typeof alg !== 'string' || !(issuer.config.algorithms as readonly string[]).includes(alg)) return { ok: false, detail: 'alg_not_allowed' };
    const kid = header['kid'];
    if (kid !== undefined && typeof kid !== 'string') return { ok: false, detail: 'malformed' };
    const candidates = keysFor(issuer.keys, alg as Algorithm, kid);
    if (candidates.length > 0) return this.checked(decoded, issuer, alg as Algorithm, candidates);
    const fetching = issuer.refreshing?.fetchForUnknownKid();
    if (!fetching) return { ok: false, detail: issuer.refreshing && !issuer.refreshing.ready ? 'jwks_unavailable' : 'kid_unknown' };
    return fetching.then(() => {
      const fetched = keysFor(issuer.keys, alg as Algorithm, kid);
      if (fetched.length > 0) return this.checked(decoded, issuer, alg as Algorithm, fetched);
      return { ok: false, detail: issuer.refreshing?.ready ? 'kid_unknown' : 'jwks_unavailable' };
    });
  }

  private checked(decoded: DecodedJws, issuer: TrustedIssuer, alg: Algorithm, candidates: IssuerKey[]): VerifyResult {
    const { payload } = decoded;
    const signer = candidates.find((k) => verifyJws(alg, k.key, decoded.signingInput, decoded.signature));
    if (!signer) return { ok: false, detail: 'bad_signature' };
    if (typeof payload['exp'] !== 'number') return { ok: false, detail: 'exp_missing' };
    const now = this.nowSeconds();
    const problem = registeredClaimProblem(payload, issuer, Math.floor(now)) ?? accessTokenProblem(decoded.header, payload, issuer.config, now);
    if (problem) return { ok: false, detail: problem };
    const read = readIdentity(payload as JwtPayload, issuer.config);
    const headerKid = decoded.header['kid'];
    // The kid of the key that verified (`revoke --kid` refuses every token it signed).
    const kid = signer.kid ?? (typeof headerKid === 'string' ? headerKid : undefined);
    if (!read.ok) return read;
    if (kid !== undefined) read.identity.kid = kid;
    read.identity.validUntil = read.identity.exp + issuer.config.clock_skew_seconds;
    return read;
  }
}

/** The keys a token of `alg` may be checked against: its `kid`'s, else the first that fit. */
function keysFor(keys: readonly IssuerKey[], alg: Algorithm, kid: string | undefined): IssuerKey[] {
  if (kid !== undefined && keys.some((k) => k.kid !== undefined)) return keys.filter((k) => k.kid === kid && k.algorithms.has(alg));
  return keys.filter((k) => k.algorithms.has(alg)).slice(0, MAX_KEYS_TRIED);
}

/** exp, nbf and aud (RFC 7519 §4.1), with the issuer's clock skew; `now` in whole seconds. */
function registeredClaimProblem(payload: Record<string, unknown>, issuer: TrustedIssuer, now: number): TokenInvalidDetail | undefined {
  const skew = issuer.config.clock_skew_seconds;
  if (now >= (payload['exp'] as number) + skew) return 'expired';
  const nbf = payload['nbf'];
  if (nbf !== undefined && typeof nbf !== 'number') return 'bad_claims';
  if (typeof nbf === 'number' && nbf > now + skew) return 'not_yet_valid';
  const accepted = issuer.config.audience;
  if (accepted === undefined) return undefined;
  const aud = payload['aud'];
  const given = Array.isArray(aud) ? aud : [aud];
  const wanted = Array.isArray(accepted) ? accepted : [accepted];
  return given.some((a) => typeof a === 'string' && wanted.includes(a)) ? undefined : 'wrong_audience';
}
