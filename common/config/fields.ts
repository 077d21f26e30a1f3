/** Field shapes and checks the config's schemas share. */
import { z } from 'zod';

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
