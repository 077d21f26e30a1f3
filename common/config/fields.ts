/** Field shapes and checks the config's schemas share. */
import { z } from 'zod';
import { parseDuration } from '../duration.js';

/** A name of the config (issuer, route, tier): lower-case, used in keys, logs and consumer ids. */
export const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, _ or -');

/** Adds an issue at `path.<i>.<key>` for every value seen before. */
export function unique(values: string[], path: (string | number)[], key: string, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [...path, i, key], message: `duplicate ${key} "${v}"` });
    seen.add(v);
  });
}

/** Seconds, or a duration like `15m`, `24h`, `7d`, up to `maxSeconds` (`maxText` says it in words); parsed to seconds. */
export function durationSeconds(maxSeconds: number, maxText: string) {
  const message = 'must be seconds or a duration like 90s, 15m, 24h, 7d';
  return z
    .union([z.number(), z.string()], { error: message })
    .transform((value, ctx) => {
      const seconds = typeof value === 'number' ? value : parseDuration(value);
      if (seconds === undefined) ctx.addIssue({ code: 'custom', message });
      return seconds ?? z.NEVER;
    })
    .pipe(z.number().int().positive().max(maxSeconds, `must be at most ${maxText}`));
}

/** A cookie name: an RFC 6265 token. */
export const cookieName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/, 'must be a cookie name (an RFC 6265 token)');

/** An HTTP header name (an RFC 9110 token), at most 64 characters, as written. */
export const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'must be a header name');

/** An HTTP method as routes and pools name it (upper case: methods are case-sensitive). */
export const httpMethod = z.string().regex(/^[A-Z][A-Z-]{0,19}$/, 'must be an upper-case HTTP method, e.g. GET');

/** A path of unreserved characters only (route paths, rewrites, probe paths). */
export const PLAIN_PATH = /^\/[A-Za-z0-9._~\-/]*$/;
export const PLAIN_PATH_ERROR = 'must start with / and hold only unreserved characters';
