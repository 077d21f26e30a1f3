/** The query of `GET /v1/security-events`, validated: each bad parameter is a 400 naming it. */
import { z } from 'zod';
import { SECURITY_EVENT_KINDS } from '../common/security-event.js';
import { describe, EventFilterError, timeParam } from './event-filter.js';

const value = z.string().min(1, 'must not be empty').max(4096);

export function securityEventFilterSchema(now: () => number = Date.now) {
  return z.strictObject({
    kind: z.enum(SECURITY_EVENT_KINDS).optional(),
    subject: value.optional(),
    actor: value.optional(),
    since: timeParam(now).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  });
}

export type SecurityEventFilter = z.output<ReturnType<typeof securityEventFilterSchema>>;

export function parseSecurityEventFilter(input: unknown, now: () => number = Date.now): SecurityEventFilter {
  const result = securityEventFilterSchema(now).safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  return result.data;
}
