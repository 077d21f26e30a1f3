/**
 * Every reason the gateway answers with, in one registry: the HTTP status and the message of
 * the JSON body. The README's table is checked against this one by a test.
 * Across process boundaries the `reason` string is the contract; never compare classes.
 */
export const REASONS = {
  token_missing: { status: 401, message: 'a bearer token is required' },
  token_invalid: { status: 401, message: 'the token is not valid' },
  token_revoked: { status: 401, message: 'the token has been revoked' },
  banned: { status: 403, message: 'access is blocked' },
  forbidden: { status: 403, message: 'access to this route is not allowed' },
  rate_limited: { status: 429, message: 'rate limit exceeded' },
  auth_unavailable: { status: 503, message: 'authorization is unavailable' },
  no_route: { status: 404, message: 'no route matches this path' },
  bad_request: { status: 400, message: 'the request is malformed' },
  request_timeout: { status: 408, message: 'the request was not received in time' },
  headers_too_large: { status: 431, message: 'the request headers are too large' },
  payload_too_large: { status: 413, message: 'the request body is larger than the route accepts' },
  misdirected_request: { status: 421, message: 'this gateway does not serve that host' },
  upstream_error: { status: 502, message: 'the upstream service failed' },
  upstream_timeout: { status: 504, message: 'the upstream service timed out' },
  upstream_unavailable: { status: 503, message: 'no target of the upstream service is available' },
  invalid_credentials: { status: 401, message: 'the username or password is wrong' },
  login_throttled: { status: 429, message: 'too many failed logins: try again later' },
  password_too_long: { status: 400, message: 'the password is longer than 72 bytes, which bcrypt cannot check' },
  refresh_invalid: { status: 401, message: 'the refresh token is not valid' },
  method_not_allowed: { status: 405, message: 'this route does not answer that method' },
  unsupported_media_type: { status: 415, message: 'send the body as application/json' },
  https_required: { status: 308, message: 'this gateway is served over https: follow Location' },
  cors_refused: { status: 403, message: 'this origin, method or header is not allowed by the route\'s CORS policy' },
} as const satisfies Record<string, { status: number; message: string }>;

export type Reason = keyof typeof REASONS;

/** Detail codes of `token_invalid`, recorded in the audit event, never shown to the client. */
export const TOKEN_INVALID_DETAILS = {
  malformed: 'not a compact JWS, or the Authorization header is not `Bearer <token>`',
  alg_not_allowed: "the header's alg is not in the issuer's allow-list (alg none is never allowed)",
  unknown_issuer: 'no configured issuer has this iss',
  bad_signature: 'the signature does not verify',
  kid_unknown: "the header's kid names none of the issuer's keys (for that alg), even after the JWKS fetch it may trigger",
  exp_missing: 'the token has no exp claim',
  expired: 'exp is in the past (beyond the clock skew)',
  not_yet_valid: 'nbf is in the future (beyond the clock skew)',
  wrong_audience: 'aud does not name an accepted audience',
  bad_claims: 'a claim has the wrong type (sub missing, groups not a list of strings, ...)',
  claim_invalid: 'a string claim the sidecar uses (sub, jti, username, tier, a group) holds a control character (U+0000-U+001F, U+007F)',
  crit_unsupported: 'the header has crit: it names an extension, and the sidecar understands none (RFC 7515 §4.1.11)',
  iat_future: 'iat is in the future (beyond the clock skew)',
  lifetime_too_long: "exp - iat exceeds the issuer's max_lifetime (without iat: exp - now, less the clock skew)",
  wrong_type: 'not an access token: a typ header other than JWT / at+jwt, or a token_use, token_type, type or typ claim naming another kind (refresh, id, ...)',
  multiple_tokens: 'the request carries more than one Authorization header',
} as const;

export type TokenInvalidDetail = keyof typeof TOKEN_INVALID_DETAILS;

/** Detail codes of allowed requests, recorded in the audit event (detail is null otherwise). */
export const ALLOW_DETAILS = {
  tier_unknown: "the token's tier claim names no configured tier: the default tier for tokens applied",
  redis_unavailable: 'fail_open: Redis was not connected; revocation, bans and limits went unchecked',
  redis_timeout: 'fail_open: Redis did not answer within sidecar.decision_timeout_ms; revocation, bans and limits went unchecked',
  redis_breaker_open: 'fail_open: the circuit breaker was open (recent decisions timed out), Redis was not asked; revocation, bans and limits went unchecked',
} as const;

export type AllowDetail = keyof typeof ALLOW_DETAILS;

/** The JSON error body of the README's table: `{"error", "reason", "request_id"}`. */
export function errorBody(reason: Reason, requestId: string, message: string = REASONS[reason].message): string {
  return JSON.stringify({ error: message, reason, request_id: requestId });
}

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASONS, value);
}
