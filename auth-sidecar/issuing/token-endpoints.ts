/**
 * The token endpoints, as the gateway hands them over (the Token gRPC call) after its own check
 * of the request (bans, rate limits) and before its audit event:
 * - POST /auth/login   {username, password} -> {access_token, refresh_token, token_type, expires_in}
 * - POST /auth/refresh {refresh_token}      -> the same, with a new refresh token (rotation)
 * - POST /auth/logout  Authorization: Bearer <access token> and/or {refresh_token} -> 204
 * - GET  /.well-known/jwks.json             -> the public keys of the sidecar's own issuer
 * In cookie mode (token_issuing.refresh_cookie) the refresh token travels in a cookie instead
 * of the body. Answers never carry a password, and logs and audit details never do either.
 * An unknown user and a wrong password get the same answer after the same work (a bcrypt check
 * against a decoy hash of the same cost). A banned consumer gets no tokens (403 banned, asked only
 * once its password matched); its refresh session is kept for when the ban ends.
 */
import type { IssuerConfig, TokenIssuingConfig } from '../../common/config/schema.js';
import { errorBody, REASONS, type Reason } from '../../common/errors.js';
import { canonicalIp } from '../../common/ip-address.js';
import type { Logger } from '../../common/logger.js';
import type { Identity } from '../../proto/generated/auth/v1/Identity.js';
import type { TokenRequest__Output, TokenResponse } from '../../common/proto.js';
import { MAX_PASSWORD_BYTES, type User, type Users } from '../../common/users.js';
import { signAccessToken, type AccessToken } from './access-token.js';
import { cookieValues } from '../../common/cookies.js';
import { refreshCookie } from './cookies.js';
import type { LoginThrottle } from './login-throttle.js';
import type { OwnKeys } from './own-keys.js';
import { HasherBusyError, type PasswordHasher } from './password-hasher.js';
import type { RefreshFamilies } from './refresh-families.js';

export const TOKEN_PATHS = { login: '/auth/login', refresh: '/auth/refresh', logout: '/auth/logout', jwks: '/.well-known/jwks.json' } as const;

export interface TokenEndpointsDeps {
  issuer: IssuerConfig;
  issuing: TokenIssuingConfig;
  keys: OwnKeys;
  users: Users;
  throttle: LoginThrottle;
  families: RefreshFamilies;
  hasher: PasswordHasher;
  /** Verifies an access token presented at logout; resolves its jti and exp when it is the own issuer's and valid. */
  ownAccessToken: (token: string) => Promise<{ jti: string; exp: number; sub: string } | undefined>;
  /** Revokes a token id until its exp (unix seconds). */
  revokeJti: (jti: string, exp: number, reason: string) => Promise<void>;
  /** Whether a consumer (`<issuer>:<user>`) is banned: it gets no tokens while it is. */
  isBanned: (consumer: string) => Promise<boolean>;
  logger: Logger;
  now?: () => number;
}

type Answer = TokenResponse;

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

export class TokenEndpoints {
  private readonly now: () => number;

  constructor(private readonly deps: TokenEndpointsDeps) {
    this.now = deps.now ?? Date.now;
  }

  async handle(request: TokenRequest__Output): Promise<Answer> {
    const { path, method } = request;
    if (path === TOKEN_PATHS.jwks) return method === 'GET' || method === 'HEAD' ? this.jwks() : refusal(request, 'method_not_allowed', 'method', { allow: 'GET, HEAD' });
    const endpoint = Object.entries(TOKEN_PATHS).find(([, p]) => p === path)?.[0] as keyof typeof TOKEN_PATHS | undefined;
    if (!endpoint) return refusal(request, 'no_route', 'no_token_endpoint');
    if (method !== 'POST') return refusal(request, 'method_not_allowed', 'method', { allow: 'POST' });
    const body = jsonBody(request);
    if (body === 'unsupported') return refusal(request, 'unsupported_media_type', 'content_type');
    if (body === undefined) return refusal(request, 'bad_request', 'body_malformed');
    if (endpoint === 'login') return this.login(request, body);
    if (endpoint === 'refresh') return this.refresh(request, body);
    return this.logout(request, body);
  }

  private jwks(): Answer {
    return { http_status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' }, body: Buffer.from(JSON.stringify(this.deps.keys.jwks)) };
  }

  private async login(request: TokenRequest__Output, body: Record<string, unknown>): Promise<Answer> {
    const { username, password } = body;
    if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') return refusal(request, 'bad_request', 'fields_missing');
    // bcrypt would check only the first 72 bytes: a longer password is refused, never cut.
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return refusal(request, 'password_too_long', 'password_too_long');
    if (username.length > 256) return refusal(request, 'invalid_credentials', 'unknown_user');
    // The ip as bans and limits spell it: ::ffff:1.2.3.4 and 1.2.3.4 are one client.
    const ip = canonicalIp(request.client_ip) ?? request.client_ip;
    const wait = await this.deps.throttle.attempt(username, ip);
    if (wait > 0) return refusal(request, 'login_throttled', 'throttled', { 'retry-after': String(wait) });

    const user = await this.deps.users.get(username);
    let matches: boolean;
    try {
      // An unknown user is checked against the decoy hash: the same answer after the same work.
      matches = await this.deps.hasher.matches(password, user?.hash ?? this.deps.hasher.decoyHash);
    } catch (err) {
      if (!(err instanceof HasherBusyError)) throw err;
      return refusal(request, 'auth_unavailable', 'login_busy', { 'retry-after': '1' });
    }
    if (!user || !matches || user.disabled) {
      return refusal(request, 'invalid_credentials', !user ? 'unknown_user' : !matches ? 'wrong_password' : 'user_disabled', {}, user && this.identityOf(user));
    }
    await this.deps.throttle.succeeded(username, ip);
    // Asked only after the password matched: a banned account is not told to a guesser.
    const identity = this.identityOf(user);
    if (await this.deps.isBanned(identity.consumer!)) return refusal(request, 'banned', 'consumer', {}, identity);
    const access = this.sign(user);
    const refreshToken = await this.deps.families.create(user.username, access, this.now());
    return this.tokens(user, access, refreshToken, 'login');
  }

  private async refresh(request: TokenRequest__Output, body: Record<string, unknown>): Promise<Answer> {
    const presented = this.presentedRefreshToken(request, body);
    if (presented === undefined) return refusal(request, 'bad_request', 'fields_missing');
    if (presented === 'ambiguous') return refusal(request, 'bad_request', 'multiple_cookies');
    const family = await this.deps.families.familyOf(presented);
    if (!family) return this.refreshRefused(request, 'refresh_unknown');
    const user = await this.deps.users.get(family.user);
    const identity = user && this.identityOf(user);
    const ended = !user ? 'user_deleted' : user.disabled ? 'user_disabled' : family.created < user.sessionsAfter ? 'session_ended' : family.created + this.deps.issuing.session_max_lifetime * 1000 <= this.now() ? 'session_expired' : undefined;
    if (ended) {
      await this.deps.families.revoke(family, presented);
      return this.refreshRefused(request, ended, identity);
    }
    // A ban refuses new tokens but keeps the session: it may be lifted before the session ends.
    if (await this.deps.isBanned(identity!.consumer!)) return refusal(request, 'banned', 'consumer', {}, identity);
    const access = this.sign(user!);
    const rotated = await this.deps.families.rotate(family, presented, access);
    if (rotated.kind === 'rotated') return this.tokens(user!, access, rotated.token, 'refresh');
    if (rotated.kind === 'reuse') {
      // A rotated-out token came back: someone holds a copy. The family is revoked (in the
      // script), and so is the last access token it issued.
      this.deps.logger.warn('refresh token reused: family revoked', { code: 'refresh_reuse', request_id: request.request_id, user: family.user });
      if (rotated.jti !== '') await this.deps.revokeJti(rotated.jti, rotated.exp, 'refresh token reuse');
      return this.refreshRefused(request, 'refresh_reuse', identity);
    }
    return this.refreshRefused(request, rotated.kind === 'revoked' ? 'family_revoked' : 'refresh_unknown', identity);
  }

  private async logout(request: TokenRequest__Output, body: Record<string, unknown>): Promise<Answer> {
    const bearer = /^Bearer ([^\s]+)$/i.exec(request.headers['authorization'] ?? '')?.[1];
    const presented = this.presentedRefreshToken(request, body);
    if (presented === 'ambiguous') return refusal(request, 'bad_request', 'multiple_cookies');
    if (bearer === undefined && presented === undefined) return refusal(request, 'bad_request', 'nothing_to_revoke');
    const revoked: string[] = [];
    let sub: string | undefined;
    const access = bearer === undefined ? undefined : await this.deps.ownAccessToken(bearer);
    if (access) {
      await this.deps.revokeJti(access.jti, access.exp, 'logout');
      revoked.push('access_token');
      sub = access.sub;
    }
    const family = presented === undefined ? undefined : await this.deps.families.familyOf(presented);
    const last = family && (await this.deps.families.revoke(family, presented!));
    if (last) {
      revoked.push('refresh_family');
      sub ??= family!.user;
      if (last.jti !== '' && last.jti !== access?.jti) await this.deps.revokeJti(last.jti, last.exp, 'logout');
    }
    const user = sub === undefined ? undefined : await this.deps.users.get(sub);
    // Logging out twice, or with an expired token, still ends in the logged-out state: 204 either way.
    return {
      http_status: 204,
      headers: { ...NO_STORE, ...(this.deps.issuing.refresh_cookie ? { 'set-cookie': refreshCookie(this.deps.issuing.refresh_cookie.name, undefined) } : {}) },
      body: Buffer.alloc(0),
      detail: revoked.length > 0 ? `revoked:${revoked.join(',')}` : 'nothing_revoked',
      identity: user ? this.identityOf(user) : sub === undefined ? null : this.identityOf({ username: sub, groups: [], tier: undefined }),
    };
  }

  private refreshRefused(request: TokenRequest__Output, detail: string, identity?: Identity): Answer {
    const cookie = this.deps.issuing.refresh_cookie;
    return refusal(request, 'refresh_invalid', detail, cookie ? { 'set-cookie': refreshCookie(cookie.name, undefined) } : {}, identity);
  }

  /**
   * The refresh token: from the cookie in cookie mode, else (or without one) from the body;
   * 'ambiguous' when the cookie comes twice (another site of the domain may have set one).
   */
  private presentedRefreshToken(request: TokenRequest__Output, body: Record<string, unknown>): string | 'ambiguous' | undefined {
    const cookie = this.deps.issuing.refresh_cookie;
    const inCookie = cookie ? cookieValues(request.headers['cookie'], cookie.name) : [];
    if (inCookie.length > 1) return 'ambiguous';
    const token = inCookie[0] ?? body['refresh_token'];
    return typeof token === 'string' && token !== '' ? token : undefined;
  }

  private sign(user: User): AccessToken {
    return signAccessToken(this.deps.keys.signingKey, this.deps.issuer, this.deps.issuing.access_token_ttl, user, this.now());
  }

  private tokens(user: User, access: AccessToken, refreshToken: string, detail: string): Answer {
    const cookie = this.deps.issuing.refresh_cookie;
    const body = {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.exp - access.iat,
      ...(cookie ? {} : { refresh_token: refreshToken, refresh_expires_in: this.deps.issuing.refresh_token_ttl }),
    };
    return {
      http_status: 200,
      headers: { 'content-type': 'application/json', ...NO_STORE, ...(cookie ? { 'set-cookie': refreshCookie(cookie.name, refreshToken, this.deps.issuing.refresh_token_ttl) } : {}) },
      body: Buffer.from(JSON.stringify(body)),
      detail,
      identity: { ...this.identityOf(user), jti: access.jti, iat: access.iat },
    };
  }

  private identityOf(user: Pick<User, 'username' | 'groups' | 'tier'>): Identity {
    const issuer = this.deps.issuer.name;
    return { sub: user.username, consumer: `${issuer}:${user.username}`, username: user.username, groups: user.groups, tier: user.tier ?? '', issuer };
  }
}

function refusal(request: TokenRequest__Output, reason: Reason, detail: string, headers: Record<string, string> = {}, identity?: Identity): Answer {
  return {
    http_status: REASONS[reason].status,
    headers: { 'content-type': 'application/json', ...NO_STORE, ...headers },
    body: Buffer.from(errorBody(reason, request.request_id)),
    reason,
    detail,
    identity: identity ?? null,
  };
}

/** The body as a JSON object; 'unsupported' when it is not sent as application/json (a form could be sent cross-site without a preflight). */
function jsonBody(request: TokenRequest__Output): Record<string, unknown> | 'unsupported' | undefined {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (request.body.length === 0 && type === '') return {};
  if (type !== 'application/json') return 'unsupported';
  try {
    const value: unknown = JSON.parse(request.body.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
