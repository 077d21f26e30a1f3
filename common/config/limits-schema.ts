/** Rate-limit windows, their algorithms and the tiers built of them (auth-sidecar/limiter/decide.lua counts them). */
import { z } from 'zod';

export const windowsSchema = {
  second: z.number().int().positive().optional().describe('Requests allowed per second'),
  minute: z.number().int().positive().optional().describe('Requests allowed per minute'),
  hour: z.number().int().positive().optional().describe('Requests allowed per hour'),
  day: z.number().int().positive().optional().describe('Requests allowed per day'),
};
export const WINDOW_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
export type WindowName = keyof typeof WINDOW_SECONDS;

export const LIMIT_ALGORITHMS = ['fixed', 'sliding', 'gcra'] as const;
export type LimitAlgorithm = (typeof LIMIT_ALGORITHMS)[number];

/** How a tier's or a route's windows count (auth-sidecar/limiter/decide.lua). */
export const algorithmFields = {
  algorithm: z
    .enum(LIMIT_ALGORITHMS)
    .default('fixed')
    .describe('fixed: aligned windows (O(1), up to 2x at an edge); sliding: exact over any span (a log, memory ~ limit per key); gcra: evenly spaced with a burst (O(1))'),
  burst: z.number().int().min(1).max(1_000_000_000).optional().describe('gcra: requests that may come at once (default: the whole limit of the window)'),
};

/** `burst` only means something to gcra: refused on the other algorithms. */
export const burstNeedsGcra = (limit: { burst?: number | undefined; algorithm: LimitAlgorithm }): boolean => limit.burst === undefined || limit.algorithm === 'gcra';
export const BURST_NEEDS_GCRA = { message: 'burst is for algorithm: gcra', path: ['burst'] };

const WINDOW_NAMES = Object.keys(WINDOW_SECONDS) as WindowName[];

export const tierSchema = z
  .strictObject({ ...windowsSchema, ...algorithmFields })
  .refine((t) => WINDOW_NAMES.some((w) => t[w] !== undefined), { message: 'a tier needs at least one of second, minute, hour, day' })
  .refine(burstNeedsGcra, BURST_NEEDS_GCRA);

