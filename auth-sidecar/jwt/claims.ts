import type { JwtPayload } from 'jsonwebtoken';
import type { IssuerConfig } from '../../common/config/schema.js';

/** The identity a verified token vouches for. */
export interface TokenIdentity {
  sub: string;
  /** Unique across issuers: `<issuer>:<sub>`. */
  consumer: string;
  username: string;
  groups: string[];
  /** From the issuer's scopes_claim (space-separated string or list); only the sidecar reads them. */
  scopes: string[];
  jti: string;
  tier: string | undefined;
  issuer: string;
  iat: number | undefined;
  exp: number;
  /** The kid of the key that verified the token (set by the verifier). */
  kid?: string | undefined;
  /** Unix seconds from which the verifier refuses the token: exp plus the issuer's clock skew (set by the verifier). */
  validUntil?: number | undefined;
}

// Printable ASCII without commas: safe in an HTTP header and in the comma-joined groups list.
const SAFE = /^[\x21-\x2b\x2d-\x7e]([\x20-\x2b\x2d-\x7e]{0,254}[\x21-\x2b\x2d-\x7e])?$/;
// C0 controls and DEL: a NUL alone sinks a PostgreSQL insert of the audit batch it rides in.
const CONTROL = /[\u0000-\u001f\u007f]/;
const USERNAME_CLAIMS = ['preferred_username', 'username'] as const;

export type IdentityResult = { ok: true; identity: TokenIdentity } | { ok: false; detail: 'bad_claims' | 'claim_invalid' };

/**
 * Reads the identity out of verified claims. A string claim used here holding a control
 * character is `claim_invalid`; a claim of the wrong type or other characters is `bad_claims`.
 */
export function readIdentity(payload: JwtPayload, issuer: IssuerConfig): IdentityResult {
  const { sub, jti, exp, iat } = payload;
  const groupsClaim: unknown = payload[issuer.groups_claim];
  const tier: unknown = payload[issuer.tier_claim];
  const scopesClaim: unknown = payload[issuer.scopes_claim];
  const used = [sub, jti, tier, ...USERNAME_CLAIMS.map((c) => payload[c]), ...(Array.isArray(groupsClaim) ? groupsClaim : [groupsClaim]), ...(Array.isArray(scopesClaim) ? scopesClaim : [scopesClaim])];
  if (used.some((v) => typeof v === 'string' && CONTROL.test(v))) return { ok: false, detail: 'claim_invalid' };

  if (typeof sub !== 'string' || !SAFE.test(sub) || typeof exp !== 'number') return { ok: false, detail: 'bad_claims' };
  if (jti !== undefined && (typeof jti !== 'string' || jti.length > 256)) return { ok: false, detail: 'bad_claims' };
  const groups = readNames(groupsClaim);
  const scopes = readNames(scopesClaim);
  if (!groups || !scopes) return { ok: false, detail: 'bad_claims' };
  if (tier !== undefined && (typeof tier !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(tier))) return { ok: false, detail: 'bad_claims' };
  const username = USERNAME_CLAIMS.map((c) => payload[c]).find((u): u is string => typeof u === 'string' && SAFE.test(u)) ?? sub;
  return {
    ok: true,
    identity: {
      sub,
      consumer: `${issuer.name}:${sub}`,
      username,
      groups,
      scopes,
      jti: jti ?? '',
      tier,
      issuer: issuer.name,
      iat: typeof iat === 'number' ? iat : undefined,
      exp,
    },
  };
}

/** A list of names (groups, scopes): an array of strings or a space-separated string, at most 64, each SAFE. */
function readNames(claim: unknown): string[] | undefined {
  if (claim === undefined) return [];
  const list = typeof claim === 'string' ? claim.split(' ').filter(Boolean) : claim;
  if (!Array.isArray(list) || list.length > 64) return undefined;
  return list.every((g): g is string => typeof g === 'string' && SAFE.test(g)) ? list : undefined;
}
