/** The query of `GET /v1/verify`, validated: a bad parameter is a 400 naming it. */
import { z } from 'zod';
import { describe, EventFilterError, timeParam } from '../event-filter.js';
import type { VerifyOptions } from './verifier.js';

export function verifyParamsSchema(now: () => number = Date.now) {
  return z.strictObject({ since: timeParam(now).optional() });
}

export function parseVerifyParams(input: unknown, now: () => number = Date.now): VerifyOptions {
  const result = verifyParamsSchema(now).safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  return result.data.since === undefined ? {} : { since: result.data.since };
}
