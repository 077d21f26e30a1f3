import type { JwtPayload } from 'jsonwebtoken';
import type { IssuerConfig } from '../../common/config/schema.js';

/** The identity a verified token vouches for. */
export interface TokenIdentity {
  sub: string;
  /** Unique across issuers: `<issuer>:<sub>`. */
  consumer: string;
  username: string;
  groups: string[];
  jti: string;
  tier: string | undefined;
  issuer: string;
  iat: number | undefined;
  exp: number;
}

// Printable ASCII without commas: safe in an HTTP header and in the comma-joined groups list.
const SAFE = /^[\x21-\x2b\x2d-\x7e]([\x20-\x2b\x2d-\x7e]{0,254}[\x21-\x2b\x2d-\x7e])?$/;

/** Reads the identity out of verified claims; undefined when a claim has the wrong type or characters. */
export function readIdentity(payload: JwtPayload, issuer: IssuerConfig): TokenIdentity | undefined {
  const { sub, jti, exp, iat } = payload;
  if (typeof sub !== 'string' || !SAFE.test(sub) || typeof exp !== 'number') return undefined;
  if (jti !== undefined && (typeof jti !== 'string' || jti.length > 256)) return undefined;
  const groups = readGroups(payload[issuer.groups_claim]);
  if (!groups) return undefined;
  const tier = payload[issuer.tier_claim];
  if (tier !== undefined && (typeof tier !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(tier))) return undefined;
  const username = [payload['preferred_username'], payload['username']].find((u) => typeof u === 'string' && SAFE.test(u)) ?? sub;
  return {
    sub,
    consumer: `${issuer.name}:${sub}`,
    username: username as string,
    groups,
    jti: jti ?? '',
    tier,
    issuer: issuer.name,
    iat: typeof iat === 'number' ? iat : undefined,
    exp,
  };
}

function readGroups(claim: unknown): string[] | undefined {
  if (claim === undefined) return [];
  const list = typeof claim === 'string' ? claim.split(' ').filter(Boolean) : claim;
  if (!Array.isArray(list) || list.length > 64) return undefined;
  return list.every((g): g is string => typeof g === 'string' && SAFE.test(g)) ? list : undefined;
}
