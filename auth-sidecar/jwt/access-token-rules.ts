import type { IssuerConfig } from '../../common/config/schema.js';
import type { TokenInvalidDetail } from '../../common/errors.js';

/**
 * What a token with a valid signature must still satisfy to open an API: no critical
 * extension (we understand none, RFC 7515 §4.1.11), the type of an access token (RFC 8725
 * §3.11, RFC 9068), an issue time not in the future and a lifetime within the issuer's
 * `max_lifetime`. Every rule only ever turns true as time passes, never false again, so the
 * verified-token cache cannot hold a token one of them would now refuse.
 */
export function accessTokenProblem(header: Readonly<Record<string, unknown>>, payload: Readonly<Record<string, unknown>>, issuer: IssuerConfig, now: number): TokenInvalidDetail | undefined {
  if (header['crit'] !== undefined) return 'crit_unsupported';
  if (header['typ'] !== undefined && !isAccessTokenTyp(header['typ'])) return 'wrong_type';
  for (const claim of TYPE_CLAIMS) {
    const value: unknown = payload[claim];
    if (value !== undefined && (typeof value !== 'string' || !ACCESS_TYPE_CLAIM_VALUES.has(value.toLowerCase()))) return 'wrong_type';
  }
  return timeProblem(payload, issuer, now);
}

/** Header `typ` values of a JWT access token, case-insensitive, `application/` optional (RFC 7515 §4.1.9). */
const ACCESS_TYPS = new Set(['jwt', 'at+jwt']);

function isAccessTokenTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return ACCESS_TYPS.has(lower.startsWith('application/') ? lower.slice('application/'.length) : lower);
}

/** Claims issuers use to say what kind of token this is (Cognito `token_use`, Keycloak `typ`, ...). */
const TYPE_CLAIMS = ['token_use', 'token_type', 'type', 'typ'] as const;
/** Values of those claims that name an access token, lower-case; Keycloak marks its access tokens `typ: Bearer`. */
const ACCESS_TYPE_CLAIM_VALUES = new Set(['access', 'access_token', 'at+jwt', 'application/at+jwt', 'bearer']);

function timeProblem(payload: Readonly<Record<string, unknown>>, issuer: IssuerConfig, now: number): TokenInvalidDetail | undefined {
  const { iat, exp } = payload;
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) return 'bad_claims';
  if (typeof exp !== 'number') return 'exp_missing';
  const skew = issuer.clock_skew_seconds;
  if (iat !== undefined && iat > now + skew) return 'iat_future';
  // Without iat the lifetime left is measured from now, allowing the issuer's clock its skew.
  const lifetime = iat !== undefined ? exp - iat : exp - now - skew;
  return lifetime > issuer.max_lifetime ? 'lifetime_too_long' : undefined;
}
