/**
 * Rate-limit windows, their algorithms, the tiers built of them, consumer overrides, and what a
 * route's limit counts by (auth-sidecar/limiter/decide.lua counts them).
 */
import { z } from 'zod';

export const windowsSchema = {
  second: z.number().int().positive().optional().describe('Requests allowed per second'),
  minute: z.number().int().positive().optional().describe('Requests allowed per minute'),
  hour: z.number().int().positive().optional().describe('Requests allowed per hour'),
  day: z.number().int().positive().optional().describe('Requests allowed per day'),
};
export const WINDOW_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
export type WindowName = keyof typeof WINDOW_SECONDS;
export const WINDOW_NAMES = Object.keys(WINDOW_SECONDS) as [WindowName, ...WindowName[]];
export const isWindowName = (text: string): text is WindowName => Object.hasOwn(WINDOW_SECONDS, text);

export const LIMIT_ALGORITHMS = ['fixed', 'sliding', 'gcra'] as const;
export type LimitAlgorithm = (typeof LIMIT_ALGORITHMS)[number];

const algorithm = z
  .enum(LIMIT_ALGORITHMS)
  .describe('fixed: aligned windows (O(1), up to 2x at an edge); sliding: exact over any span (a log, memory ~ limit per key); gcra: evenly spaced with a burst (O(1))');
const burst = z.number().int().min(1).max(1_000_000_000).optional().describe('gcra: requests that may come at once (default: the whole limit of the window)');

/** How a tier's or a route's windows count, and what a refusal does (auth-sidecar/limiter/decide.lua). */
export const limitBehaviourFields = {
  algorithm: algorithm.default('fixed'),
  burst,
  shadow: z.boolean().default(false).describe('Count and audit as "would deny" (shadow: true in the event), but let the request through'),
  count_refused: z.boolean().default(false).describe('A request this limit refuses still counts against it (a client that keeps hammering stays refused)'),
};

/** `burst` only means something to gcra: refused on the other algorithms. */
export const burstNeedsGcra = (limit: { burst?: number | undefined; algorithm?: LimitAlgorithm | undefined }): boolean => limit.burst === undefined || limit.algorithm === 'gcra';
export const BURST_NEEDS_GCRA = { message: 'burst is for algorithm: gcra', path: ['burst'] };

const hasWindow = (limit: Partial<Record<WindowName, number | undefined>>): boolean => WINDOW_NAMES.some((w) => limit[w] !== undefined);

export const tierSchema = z
  .strictObject({ ...windowsSchema, ...limitBehaviourFields })
  .refine(hasWindow, { message: 'a tier needs at least one of second, minute, hour, day' })
  .refine(burstNeedsGcra, BURST_NEEDS_GCRA);

/**
 * One consumer's own limit in place of its tier's: `scale` multiplies every window (and burst)
 * of its tier; or windows of its own, counted by its tier's algorithm unless it names one.
 * Written in the config's `limit_overrides`, or with `admin limits set` (which wins).
 */
export const limitOverrideSchema = z
  .strictObject({
    scale: z.number().positive().max(1_000_000).optional().describe("Multiplies every window (and burst) of the consumer's tier, e.g. 10"),
    ...windowsSchema,
    algorithm: algorithm.optional(),
    burst,
  })
  .refine((o) => (o.scale !== undefined) !== hasWindow(o), { message: 'give scale, or windows (second, minute, hour, day), not both' })
  .refine((o) => o.scale === undefined || (o.algorithm === undefined && o.burst === undefined), { message: 'scale keeps the tier\'s algorithm and scales its burst', path: ['scale'] })
  .refine((o) => o.burst === undefined || o.algorithm === 'gcra', BURST_NEEDS_GCRA);
export type LimitOverride = z.output<typeof limitOverrideSchema>;

/** What a route limit may count by, alone or joined with `+` (e.g. `consumer+ip`); in this order in keys. */
const BY_KINDS = ['consumer', 'credential', 'ip', 'header', 'route'] as const;
export type LimitByPart = 'consumer' | 'credential' | 'ip' | 'route' | `header:${string}`;
const BY_PART = /^(consumer|credential|ip|route|header:[A-Za-z0-9-]{1,64})$/;
const BY_ERROR = 'must be consumer, credential, ip, route or header:<name>, or several joined with + (e.g. consumer+ip)';

/** `by`, parsed: its parts, lower-case, in BY_KINDS order, each once; at most one header. */
export const limitBySchema = z
  .string()
  .transform((text, ctx) => {
    const parts = [...new Set(text.toLowerCase().split('+').map((p) => p.trim()))];
    const problem = parts.some((p) => !BY_PART.test(p)) ? BY_ERROR : parts.filter((p) => p.startsWith('header:')).length > 1 ? 'at most one header:<name> in by' : undefined;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const rank = (p: string): number => BY_KINDS.indexOf(p.split(':')[0] as (typeof BY_KINDS)[number]);
    return parts.sort((a, b) => rank(a) - rank(b)) as LimitByPart[];
  })
  .describe('Counter subject: consumer (anonymous: ip), credential (the token id; none: consumer, then ip), ip, header:<name> (absent: ip), route (every caller together), or several joined with + (e.g. consumer+ip)');
