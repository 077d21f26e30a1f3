/**
 * `issuers`: who may sign tokens, with which algorithms and keys (static, a list chosen by kid,
 * or a JWKS URL), and which claims carry groups, tier and scopes.
 */
import { z } from 'zod';
import { durationSeconds, name, unique } from './fields.js';

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
export const EC_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;
export const OKP_ALGORITHMS = ['EdDSA'] as const;
export const ALGORITHMS = [...HMAC_ALGORITHMS, ...RSA_ALGORITHMS, ...EC_ALGORITHMS, ...OKP_ALGORITHMS] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
/** What the sidecar signs its own access tokens with (token_issuing.algorithm). */
export const SIGNING_ALGORITHMS = ['ES256', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Where one verification key comes from: exactly one of the sources, with an optional `kid`. */
const keySourceFields = {
  secret_env: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
    .optional()
    .describe('Environment variable holding an HMAC secret (HS* algorithms), at least 32 bytes once decoded'),
  secret_encoding: z.enum(['utf8', 'base64']).optional().describe('How the secret is written: utf8 (as is, the default) or base64 / base64url'),
  public_key: z.string().optional().describe('PEM public key, inline (RS*, PS*, ES*, EdDSA)'),
  public_key_file: z.string().optional().describe('Path of a PEM public key file, relative to the config file'),
  jwk: z.record(z.string(), z.unknown()).optional().describe('A public JWK (kty RSA, EC, OKP) or an HMAC one (kty oct)'),
};
export const KEY_SOURCES = ['secret_env', 'public_key', 'public_key_file', 'jwk'] as const;

function oneKeySource(source: Partial<Record<(typeof KEY_SOURCES)[number], unknown>>, ctx: z.RefinementCtx, path: (string | number)[]): void {
  if (KEY_SOURCES.filter((k) => source[k] !== undefined).length !== 1) {
    ctx.addIssue({ code: 'custom', message: `exactly one of ${KEY_SOURCES.join(', ')} is required`, path });
  }
}

function secureOrLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === 'https:' || (protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(hostname));
}

/** How the sidecar keeps an issuer's JWKS (auth-sidecar/jwt/jwks-keys.ts); JWKS_DEFAULTS when not given. */
const jwksSchema = z
  .strictObject({
    timeout_ms: z.number().int().min(100).max(30_000).default(2_000).describe('Longest wait for one fetch'),
    min_ttl_seconds: z.number().int().min(1).max(86_400).default(60).describe("Shortest time keys are kept, whatever the answer's Cache-Control says"),
    max_ttl_seconds: z.number().int().min(1).max(86_400).default(3_600).describe("Longest time keys are kept before a refresh (Cache-Control's max-age within these bounds; 300 s without one)"),
    unknown_kid_interval_seconds: z.number().int().min(1).max(3_600).default(10).describe('At most one fetch per this many seconds for tokens naming a kid the keys do not have'),
    failure_cooldown_seconds: z.number().int().min(1).max(3_600).default(30).describe('After a failed fetch, the last good keys serve and the next try waits this long'),
  })
  .refine((j) => j.min_ttl_seconds <= j.max_ttl_seconds, { message: 'min_ttl_seconds must not exceed max_ttl_seconds', path: ['min_ttl_seconds'] });
export type JwksConfig = z.output<typeof jwksSchema>;
export const JWKS_DEFAULTS: JwksConfig = jwksSchema.parse({});

/** Most keys one issuer may list: a token without `kid` is tried against at most MAX_KEYS_TRIED of them. */
export const MAX_ISSUER_KEYS = 16;

const keySchema = z
  .strictObject({
    kid: z.string().min(1).max(256).optional().describe('Key id: a token whose header names this kid is checked against this key only'),
    ...keySourceFields,
  })
  .superRefine((key, ctx) => oneKeySource(key, ctx, []));

export const issuerSchema = z
  .strictObject({
    name: name.describe('Name used in logs, audit records and consumer ids (<issuer>:<sub>)'),
    iss: z.string().min(1).describe('Exact value required in the token `iss` claim'),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('Accepted `aud` values; when set, a token must carry one of them'),
    algorithms: z.array(z.enum(ALGORITHMS)).min(1).describe('Explicit allow-list of signing algorithms'),
    ...keySourceFields,
    keys: z.array(keySchema).min(1).max(MAX_ISSUER_KEYS).optional().describe('Several keys, each with its own source and kid (instead of one key source on the issuer)'),
    jwks_url: z
      .url()
      .refine(secureOrLoopback, 'must be https:// (http:// only to 127.0.0.1, ::1 or localhost)')
      .optional()
      .describe("The issuer's JWKS (instead of static keys): fetched, cached and refreshed by the sidecar"),
    sidecar_keys: z
      .literal(true)
      .optional()
      .describe("The sidecar's own issuer: tokens it signs at /auth/login with its keys kept in Redis (token_issuing), instead of a key source"),
    jwks: jwksSchema.optional().describe('Fetch timeout, cache bounds, unknown-kid and failure intervals of jwks_url (defaults: 2000 ms, 60-3600 s, 10 s, 30 s)'),
    clock_skew_seconds: z.number().int().min(0).max(300).default(30).describe('Tolerance on exp, nbf and iat'),
    max_lifetime: durationSeconds(366 * 86400, '366d')
      .default(86400)
      .describe('Longest accepted token lifetime, exp - iat (without iat: exp - now, less the clock skew), as seconds or 15m, 24h, 7d; parsed to seconds'),
    groups_claim: z.string().min(1).default('groups').describe('Claim holding the ACL groups (array or space-separated string)'),
    tier_claim: z.string().min(1).default('tier').describe('Claim naming the rate-limit tier'),
    scopes_claim: z.string().min(1).default('scope').describe('Claim holding the scopes (space-separated string, as RFC 9068 `scope`, or a list, as `scp`)'),
  })
  .superRefine((issuer, ctx) => {
    const onIssuer = KEY_SOURCES.filter((k) => issuer[k] !== undefined);
    if (issuer.sidecar_keys) {
      const others = [...onIssuer, ...(issuer.keys ? ['keys'] : []), ...(issuer.jwks_url ? ['jwks_url'] : [])];
      if (others.length > 0) ctx.addIssue({ code: 'custom', message: `sidecar_keys replaces ${others.join(', ')}: give one or the other`, path: ['sidecar_keys'] });
      issuer.algorithms.forEach((alg, i) => {
        if (!(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) ctx.addIssue({ code: 'custom', message: `the sidecar signs with ${SIGNING_ALGORITHMS.join(' or ')}, not ${alg}`, path: ['algorithms', i] });
      });
      return;
    }
    if (issuer.jwks_url !== undefined) {
      const others = [...onIssuer, ...(issuer.keys ? ['keys'] : [])];
      if (others.length > 0) ctx.addIssue({ code: 'custom', message: `jwks_url replaces ${others.join(', ')}: give one or the other`, path: ['jwks_url'] });
      issuer.algorithms.forEach((alg, i) => {
        if ((HMAC_ALGORITHMS as readonly string[]).includes(alg)) ctx.addIssue({ code: 'custom', message: `${alg} needs a secret, which a JWKS may not publish`, path: ['algorithms', i] });
      });
      return;
    }
    if (issuer.keys !== undefined) {
      if (onIssuer.length > 0) ctx.addIssue({ code: 'custom', message: `keys replaces ${onIssuer.join(', ')}: give one or the other`, path: ['keys'] });
      // Keys without a kid get a placeholder no kid can equal, so indexes stay those of `keys`.
      unique(issuer.keys.map((k, i) => k.kid ?? `\0${i}`), ['keys'], 'kid', ctx);
      return;
    }
    oneKeySource(issuer, ctx, []);
    if (onIssuer.length !== 1) return;
    // One key of a known kind: say at once which algorithms it cannot serve (the loader checks every key's fit).
    const hmac = issuer.secret_env !== undefined;
    if (issuer.jwk !== undefined) return;
    issuer.algorithms.forEach((alg, i) => {
      const isHmac = (HMAC_ALGORITHMS as readonly string[]).includes(alg);
      if (isHmac !== hmac) {
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms', i],
          message: hmac ? `${alg} needs a public key, not secret_env` : `${alg} needs secret_env, not a public key`,
        });
      }
    });
  });

export type KeySourceConfig = z.output<typeof keySchema>;
