/**
 * The filters of `GET /v1/events`, parsed from a query string. Relative times (`15m`, `7d`)
 * are read against an injected clock so tests need no real time.
 */
import { z } from 'zod';
import { TRACE_ID } from '../common/tracing/trace-context.js';
import { decodeCursor, type Cursor } from './store/cursor.js';
import { inTimeRange, TIME_RANGE_MESSAGE } from './store/time-range.js';

export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 100;
export const EVENT_KINDS = ['request', 'security', 'all'] as const;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const RELATIVE = /^(\d{1,9})([smhd])$/;
const isoDatetime = z.iso.datetime({ offset: true });

/**
 * An ISO timestamp, or a duration before `now()`; the result is an ISO timestamp within years
 * 0001-9999 (a `999999999d` or a year 0000 is refused here, not by the database).
 */
export function timeParam(now: () => number) {
  return z.string().transform((value, ctx) => {
    const relative = RELATIVE.exec(value);
    const ms = relative
      ? now() - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]
      : isoDatetime.safeParse(value).success
        ? Date.parse(value)
        : undefined;
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO timestamp with offset (2025-01-02T03:04:05Z) or a duration such as 30s, 15m, 1h, 7d' });
      return z.NEVER;
    }
    if (!inTimeRange(ms)) {
      ctx.addIssue({ code: 'custom', message: TIME_RANGE_MESSAGE });
      return z.NEVER;
    }
    return relative ? new Date(ms).toISOString() : value;
  });
}

const value = z.string().min(1, 'must not be empty').max(4096);

export function eventFilterSchema(now: () => number = Date.now) {
  return z
    .strictObject({
      sub: value.optional(),
      consumer: value.optional(),
      client_ip: value.optional(),
      route: value.optional(),
      decision: z.enum(['allow', 'deny']).optional(),
      reason: value.optional(),
      request_id: value.optional(),
      /** A W3C trace id; upper-case hex is read as lower-case. */
      trace_id: z
        .string()
        .transform((id) => id.toLowerCase())
        .pipe(z.string().regex(TRACE_ID, 'must be a W3C trace id: 32 hex characters'))
        .optional(),
      jti: value.optional(),
      status: z.coerce.number().int().min(0).max(999).optional(),
      /** Events whose path starts with this text (no wildcards: `%` and `_` are literal). */
      path_prefix: value.optional(),
      /** request: audit events (the default); security: security events; all: both, merged. */
      kind: z.enum(EVENT_KINDS).optional(),
      since: timeParam(now).optional(),
      until: timeParam(now).optional(),
      limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
      cursor: z
        .string()
        .transform((text, ctx): Cursor => {
          const cursor = decodeCursor(text);
          if (cursor) return cursor;
          ctx.addIssue({ code: 'custom', message: 'is not a cursor returned by this API' });
          return z.NEVER;
        })
        .optional(),
    })
    .superRefine((f, ctx) => {
      if (f.since !== undefined && f.until !== undefined && Date.parse(f.since) > Date.parse(f.until)) {
        ctx.addIssue({ code: 'custom', path: ['since'], message: 'must not be after until' });
      }
    });
}

export type EventFilter = z.output<ReturnType<typeof eventFilterSchema>>;

/** A filter the caller got wrong; the message names the parameter. */
export class EventFilterError extends Error {
  readonly code = 'bad_request';
  constructor(message: string) {
    super(message);
    this.name = 'EventFilterError';
  }
}

export function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown parameter${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
  const name = issue.path.map(String).join('.') || 'query';
  return `${name}: ${issue.message}`;
}

/** Parses query-string filters; throws EventFilterError naming the bad parameter. */
export function parseEventFilter(input: unknown, now: () => number = Date.now): EventFilter {
  const result = eventFilterSchema(now).safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  return result.data;
}
