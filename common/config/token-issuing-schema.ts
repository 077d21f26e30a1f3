/**
 * `token_issuing`: how the sidecar issues tokens for its own users (auth-sidecar/issuing/): the
 * signing algorithm, the lifetimes of access and refresh tokens, bcrypt's cost, how failed
 * logins are throttled, and whether browsers get the refresh token as a cookie.
 * Its issuer is the issuers entry with `sidecar_keys: true` (checked in schema.ts).
 */
import { z } from 'zod';
import { cookieName, durationSeconds } from './fields.js';
import { SIGNING_ALGORITHMS } from './issuer-schema.js';


const throttleSchema = z.strictObject({
  failures: z.number().int().min(1).max(10_000).describe('Failed logins allowed within the window'),
  window: durationSeconds(86_400, '1d').describe('Window, counted from the first failure (as seconds or 15m, 1h)'),
});

export const tokenIssuingSchema = z.strictObject({
  algorithm: z.enum(SIGNING_ALGORITHMS).default('ES256').describe("Algorithm of the sidecar's signing keys (new keys; a rotation may change it)"),
  access_token_ttl: durationSeconds(86_400, '1d').default(900).describe('Lifetime of an access token (default 15m)'),
  refresh_token_ttl: durationSeconds(90 * 86_400, '90d').default(7 * 86_400).describe('Lifetime of a refresh token from its issue; each refresh issues a new one (default 7d)'),
  session_max_lifetime: durationSeconds(366 * 86_400, '366d')
    .default(30 * 86_400)
    .describe('Longest a login lasts however often it is refreshed: a refresh family older than this is refused (default 30d)'),
  bcrypt_cost: z.number().int().min(10).max(15).default(12).describe('bcrypt cost of passwords set from now on (2^cost rounds; 12 costs ~330 ms of CPU here)'),
  login_throttle: z
    .strictObject({
      per_username: throttleSchema.default({ failures: 5, window: 900 }).describe('Failed logins per username (known or not), whatever the address'),
      per_ip: throttleSchema.default({ failures: 20, window: 900 }).describe('Failed logins per client address, whatever the username'),
    })
    .prefault({})
    .describe('Past either count, logins are answered 429 login_throttled with Retry-After, without checking the password'),
  refresh_cookie: z
    .strictObject({ name: cookieName.default('gw_refresh').describe('Cookie name') })
    .optional()
    .describe('Cookie mode for browsers: the refresh token travels in an HttpOnly; Secure; SameSite=Strict cookie scoped to /auth/, never in a body'),
});

export type TokenIssuingConfig = z.output<typeof tokenIssuingSchema>;
