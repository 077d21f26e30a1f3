/** Builds CheckResponse messages: one place for the status, headers and identity of each answer. */
import { REASONS, type AllowDetail, type Reason } from '../../common/errors.js';
import type { CheckResponse } from '../../common/proto.js';
import type { TokenIdentity } from '../jwt/claims.js';
import type { LimitReport } from '../limiter/redis-decider.js';

/** `headers`: the rate-limit headers (limit-headers.ts) or others for the client. */
export function deny(reason: Reason, detail: string, identity?: TokenIdentity, limit?: LimitReport, headers: Record<string, string> = {}): CheckResponse {
  const clientHeaders: Record<string, string> = { ...headers };
  if (reason === 'rate_limited' && limit) clientHeaders['Retry-After'] = String(limit.resetSeconds);
  if (reason === 'token_missing') clientHeaders['WWW-Authenticate'] = 'Bearer realm="gateway"';
  if (reason === 'token_invalid' || reason === 'token_revoked') {
    clientHeaders['WWW-Authenticate'] = 'Bearer realm="gateway", error="invalid_token"';
  }
  return {
    allow: false,
    http_status: REASONS[reason].status,
    reason,
    detail,
    identity: identity && identityMessage(identity),
    client_headers: clientHeaders,
    rate_limit: limit && rateLimitMessage(limit),
  };
}

export interface AllowNotes {
  /** Let through unchecked because Redis could not decide (the route fails open). */
  failOpen?: boolean;
  detail?: AllowDetail | undefined;
  /** No token on an `auth: optional` route: the upstream gets `X-Anonymous-Consumer: true`. */
  anonymous?: boolean;
  /** The rate-limit headers for the client (limit-headers.ts). */
  headers?: Record<string, string>;
  /** A shadow limit would have refused: `limit` names it. */
  shadow?: boolean;
}

export function allow(identity: TokenIdentity | undefined, limit: LimitReport | undefined, notes: AllowNotes = {}): CheckResponse {
  return {
    allow: true,
    http_status: 200,
    detail: notes.detail ?? '',
    identity: identity && identityMessage(identity),
    upstream_headers: identity
      ? {
          'X-Consumer-ID': identity.consumer,
          'X-Consumer-Username': identity.username,
          'X-Consumer-Groups': identity.groups.join(','),
        }
      : notes.anonymous
        ? { 'X-Anonymous-Consumer': 'true' }
        : {},
    client_headers: notes.headers ?? {},
    rate_limit: limit && rateLimitMessage(limit),
    fail_open: notes.failOpen ?? false,
    shadow: notes.shadow ?? false,
  };
}

function rateLimitMessage(limit: LimitReport): CheckResponse['rate_limit'] {
  return { limit: limit.name, window: limit.window, max: limit.max, remaining: limit.remaining, reset_s: limit.resetSeconds };
}

function identityMessage(identity: TokenIdentity): CheckResponse['identity'] {
  return {
    sub: identity.sub,
    consumer: identity.consumer,
    username: identity.username,
    groups: identity.groups,
    jti: identity.jti,
    tier: identity.tier ?? '',
    issuer: identity.issuer,
    iat: identity.iat ?? 0,
    kid: identity.kid ?? '',
    valid_until: identity.validUntil ?? identity.exp,
  };
}
