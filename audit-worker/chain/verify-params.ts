/** The query of `GET /v1/verify`, validated: a bad parameter is a 400 naming it. */
import { z } from 'zod';
import { describe, EventFilterError, timeParam } from '../event-filter.js';
import type { VerifyOptions } from './verifier.js';

const ANCHOR = /^([1-9]\d{0,15}):([0-9a-f]{64})$/;

export function verifyParamsSchema(now: () => number = Date.now) {
  return z.strictObject({
    since: timeParam(now).optional(),
    anchor: z
      .string()
      .transform((text, ctx) => {
        const match = ANCHOR.exec(text.toLowerCase());
        if (match) return { seq: Number(match[1]), hash: match[2]! };
        ctx.addIssue({ code: 'custom', message: 'must be SEQ:HASH, a link number and its 64 hex digit hash (the head_seq and head_hash the worker logged)' });
        return z.NEVER;
      })
      .optional(),
  });
}

export function parseVerifyParams(input: unknown, now: () => number = Date.now): VerifyOptions {
  const result = verifyParamsSchema(now).safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  const { since, anchor } = result.data;
  return { ...(since === undefined ? {} : { since }), ...(anchor === undefined ? {} : { anchor }) };
}
