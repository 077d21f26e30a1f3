import jwt from 'jsonwebtoken';
import type { TokenInvalidDetail } from '../../common/errors.js';
import { accessTokenProblem } from './access-token-rules.js';
import { readIdentity, type TokenIdentity } from './claims.js';
import type { TrustedIssuer } from './issuer-keys.js';

export type VerifyResult = { ok: true; identity: TokenIdentity } | { ok: false; detail: TokenInvalidDetail };

const COMPACT_JWS = /^[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{2,16384}\.[A-Za-z0-9_-]{0,2048}$/;

/**
 * Verifies compact JWS tokens against the configured issuers. The issuer is picked by the
 * unverified `iss`, then everything is checked against that issuer's key and allow-list only:
 * a token can never choose its own algorithm or key.
 */
export class TokenVerifier {
  private readonly byIss: Map<string, TrustedIssuer>;

  constructor(issuers: readonly TrustedIssuer[], private readonly nowSeconds: () => number = () => Date.now() / 1000) {
    this.byIss = new Map(issuers.map((i) => [i.config.iss, i]));
  }

  verify(token: string): VerifyResult {
    if (!COMPACT_JWS.test(token)) return { ok: false, detail: 'malformed' };
    const decoded = decodeUnverified(token);
    if (!decoded) return { ok: false, detail: 'malformed' };
    const { header, payload } = decoded;
    const issuer = typeof payload.iss === 'string' ? this.byIss.get(payload.iss) : undefined;
    if (!issuer) return { ok: false, detail: 'unknown_issuer' };
    const algorithms = issuer.config.algorithms;
    if (!(algorithms as readonly string[]).includes(header.alg)) return { ok: false, detail: 'alg_not_allowed' };
    if (typeof payload.exp !== 'number') return { ok: false, detail: 'exp_missing' };
    const now = this.nowSeconds();
    try {
      jwt.verify(token, issuer.key, {
        algorithms: [...algorithms],
        issuer: issuer.config.iss,
        audience: audienceOf(issuer),
        clockTolerance: issuer.config.clock_skew_seconds,
        clockTimestamp: Math.floor(now),
      });
    } catch (err) {
      return { ok: false, detail: detailOf(err as Error) };
    }
    const problem = accessTokenProblem(header, payload, issuer.config, now);
    if (problem) return { ok: false, detail: problem };
    return readIdentity(payload, issuer.config);
  }
}

/** Header and payload without verification; undefined unless both are JSON objects. */
function decodeUnverified(token: string): { header: jwt.JwtHeader; payload: jwt.JwtPayload } | undefined {
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    return undefined;
  }
  const payload = decoded?.payload;
  if (!decoded || payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  return { header: decoded.header, payload };
}

function audienceOf(issuer: TrustedIssuer): string | [string, ...string[]] | undefined {
  const aud = issuer.config.audience;
  return Array.isArray(aud) ? (aud as [string, ...string[]]) : aud;
}

// jsonwebtoken signals failures by class and message; map them to our detail codes.
function detailOf(err: Error): TokenInvalidDetail {
  if (err instanceof jwt.TokenExpiredError) return 'expired';
  if (err instanceof jwt.NotBeforeError) return 'not_yet_valid';
  if (err.message === 'invalid signature') return 'bad_signature';
  if (err.message.startsWith('jwt audience invalid')) return 'wrong_audience';
  if (err.message === 'invalid algorithm') return 'alg_not_allowed';
  return 'malformed';
}
