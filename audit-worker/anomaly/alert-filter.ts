/** The query of `GET /v1/alerts`, validated: each bad parameter is a 400 naming it. */
import { z } from 'zod';
import { describe, EventFilterError, timeParam } from '../event-filter.js';

const value = z.string().min(1, 'must not be empty').max(4096);

export function alertFilterSchema(now: () => number = Date.now) {
  return z.strictObject({
    status: z.enum(['open', 'acked']).optional(),
    rule: value.optional(),
    subject: value.optional(),
    since: timeParam(now).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  });
}

export type AlertFilter = z.output<ReturnType<typeof alertFilterSchema>>;

export function parseAlertFilter(input: unknown, now: () => number = Date.now): AlertFilter {
  const result = alertFilterSchema(now).safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  return result.data;
}

export const alertId = z.uuid();
