/**
 * Signs the sidecar's own access tokens (RFC 9068): header `typ: at+jwt` and the signing key's
 * `kid`; claims iss, sub (the username), aud, iat, exp, jti, and the user's groups and tier under
 * the issuer's groups_claim and tier_claim, so they verify like any other issuer's.
 */
import { randomUUID, sign } from 'node:crypto';
import type { IssuerConfig } from '../../common/config/schema.js';
import type { User } from '../../common/users.js';
import type { Signer } from './own-keys.js';

export interface AccessToken {
  token: string;
  jti: string;
  /** Unix seconds. */
  iat: number;
  exp: number;
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function signAccessToken(signer: Signer, issuer: IssuerConfig, ttlSeconds: number, user: Pick<User, 'username' | 'groups' | 'tier'>, nowMs = Date.now()): AccessToken {
  const iat = Math.floor(nowMs / 1000);
  const exp = iat + ttlSeconds;
  const jti = randomUUID();
  const claims: Record<string, unknown> = { iss: issuer.iss, sub: user.username, iat, exp, jti, [issuer.groups_claim]: user.groups };
  if (issuer.audience !== undefined) claims['aud'] = issuer.audience;
  if (user.tier !== undefined) claims[issuer.tier_claim] = user.tier;
  const input = `${b64({ alg: signer.alg, typ: 'at+jwt', kid: signer.kid })}.${b64(claims)}`;
  const signature = signer.alg === 'ES256' ? sign('sha256', Buffer.from(input), { key: signer.key, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(input), signer.key);
  return { token: `${input}.${signature.toString('base64url')}`, jti, iat, exp };
}
