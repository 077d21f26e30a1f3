/**
 * The parameters of the investigation routes (trace, timeline, top, after-revocation, export),
 * validated: each bad parameter is a 400 naming it, as for GET /v1/events.
 */
import { z } from 'zod';
import { describe, EventFilterError, timeParam } from '../event-filter.js';

const value = z.string().min(1, 'must not be empty').max(4096);

/** Timeline buckets: at most this many per answer, so a 1s bucket over a year is a 400, not an OOM. */
export const MAX_BUCKETS = 10_000;
const BUCKET_UNIT_S = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `30s`, `1m`, `1h`, `1d` → seconds. */
const bucketParam = z.string().transform((text, ctx) => {
  const match = /^(\d{1,6})([smhd])$/.exec(text);
  const seconds = match ? Number(match[1]) * BUCKET_UNIT_S[match[2] as keyof typeof BUCKET_UNIT_S] : 0;
  if (seconds < 1 || seconds > 366 * 86_400) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration from 1s to 366d, such as 30s, 1m, 1h, 1d' });
    return z.NEVER;
  }
  return seconds;
});

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new EventFilterError(result.error.issues.map(describe).join('; '));
  return result.data;
}

/** A range whose `until` defaults to now; `since` after `until` is refused, naming `since`. */
function range(now: () => number) {
  return {
    since: timeParam(now),
    until: timeParam(now).default(() => new Date(now()).toISOString()),
  };
}

function sinceNotAfterUntil(f: { since: string; until: string }, ctx: z.RefinementCtx): void {
  if (Date.parse(f.since) > Date.parse(f.until)) ctx.addIssue({ code: 'custom', path: ['since'], message: 'must not be after until' });
}

/** The subject filters timeline and top share with /v1/events (combined with AND). */
const subjects = {
  sub: value.optional(),
  consumer: value.optional(),
  client_ip: value.optional(),
  jti: value.optional(),
  route: value.optional(),
};

export function parseTimelineQuery(input: unknown, now: () => number = Date.now) {
  const schema = z
    .strictObject({ ...subjects, ...range(now), bucket: bucketParam.default(60) })
    .superRefine((f, ctx) => {
      sinceNotAfterUntil(f, ctx);
      const buckets = Math.ceil((Date.parse(f.until) - Date.parse(f.since)) / 1000 / f.bucket);
      if (buckets > MAX_BUCKETS) {
        ctx.addIssue({ code: 'custom', path: ['bucket'], message: `too small for the range: ${buckets} buckets (at most ${MAX_BUCKETS})` });
      }
    });
  return parse(schema, input);
}
export type TimelineQuery = ReturnType<typeof parseTimelineQuery>;

export const TOP_BY = ['ip', 'sub', 'consumer', 'route', 'reason'] as const;

export function parseTopQuery(input: unknown, now: () => number = Date.now) {
  const schema = z
    .strictObject({
      by: z.enum(TOP_BY),
      decision: z.enum(['allow', 'deny']).optional(),
      ...subjects,
      ...range(now),
      limit: z.coerce.number().int().min(1).max(1000).default(10),
    })
    .superRefine(sinceNotAfterUntil);
  return parse(schema, input);
}
export type TopQuery = ReturnType<typeof parseTopQuery>;

export function parseAfterRevocationQuery(input: unknown) {
  const schema = z
    .strictObject({ jti: value.optional(), sub: value.optional(), consumer: value.optional(), limit: z.coerce.number().int().min(1).max(1000).default(1000) })
    .superRefine((f, ctx) => {
      const given = [f.jti, f.sub, f.consumer].filter((v) => v !== undefined).length;
      if (given !== 1) ctx.addIssue({ code: 'custom', path: ['jti'], message: 'give exactly one of jti, sub, consumer' });
    });
  return parse(schema, input);
}
export type AfterRevocationQuery = ReturnType<typeof parseAfterRevocationQuery>;

export function parseTraceParams(input: unknown) {
  return parse(z.strictObject({ request_id: value.max(128, 'must be at most 128 characters') }), input);
}

export const EXPORT_KINDS = ['request', 'security', 'all'] as const;

export function parseExportQuery(input: unknown, now: () => number = Date.now) {
  const schema = z.strictObject({ ...range(now), kind: z.enum(EXPORT_KINDS).default('all') }).superRefine(sinceNotAfterUntil);
  return parse(schema, input);
}
export type ExportQuery = ReturnType<typeof parseExportQuery>;
