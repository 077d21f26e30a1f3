/** The refresh token's cookie in cookie mode: HttpOnly, Secure, SameSite=Strict, only sent to /auth/. */

/** A Set-Cookie value holding `token` for `maxAgeSeconds`, or (token undefined) clearing the cookie. */
export function refreshCookie(name: string, token: string | undefined, maxAgeSeconds = 0): string {
  return `${name}=${token ?? ''}; Path=/auth/; Max-Age=${token === undefined ? 0 : maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`;
}
