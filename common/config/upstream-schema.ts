/**
 * `upstreams`: pools of targets a route may name instead of one URL (gateway/upstream/), in
 * Kong's words where Kong has one: weighted targets, round robin or least connections, passive
 * and active health checks, and which methods are retried on another target.
 */
import { z } from 'zod';
import { httpMethod, name, PLAIN_PATH, PLAIN_PATH_ERROR } from './fields.js';

/** An http:// or https:// URL, as a route's `upstream` or a pool target's `url`. */
export function isUpstreamUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

const targetSchema = z.strictObject({
  url: z.string().refine(isUpstreamUrl, 'must be an http:// or https:// URL without query or fragment').describe('Base URL of the target (its path prefixes the request path)'),
  weight: z.number().int().min(1).max(1000).default(1).describe('Share of the requests, relative to the other targets'),
});

const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS'];

export const upstreamSchema = z
  .strictObject({
    name: name.describe('Name a route gives as its upstream'),
    targets: z.array(targetSchema).min(1).max(64),
    balance: z.enum(['round_robin', 'least_connections']).default('round_robin').describe('Weighted round robin, or the fewest requests in flight per weight'),
    health: z
      .strictObject({
        failures: z.number().int().min(1).max(100).default(3).describe('Failures in a row (connection refused or reset, timeout, a fail_statuses answer) that take a target out'),
        cooldown_s: z.number().int().min(1).max(3600).default(10).describe('How long a target stays out before it is tried again'),
        fail_statuses: z.array(z.number().int().min(500).max(599)).default([]).describe('Answers counted as failures (still sent to the client), e.g. [502, 503, 504]'),
        probe: z
          .strictObject({
            path: z.string().regex(PLAIN_PATH, PLAIN_PATH_ERROR).describe('GET on each target; 2xx or 3xx is healthy'),
            interval_s: z.number().int().min(1).max(3600).default(5),
            timeout_ms: z.number().int().min(50).max(60_000).default(2_000),
          })
          .optional()
          .describe('Active health checks: a failed probe counts as a failure, a passing one brings a target back at once'),
      })
      .prefault({}),
    retry_methods: z
      .array(httpMethod)
      .default(IDEMPOTENT_METHODS)
      .describe('Requests of these methods, without a body, that could not connect are tried once more on another target'),
  })
  .superRefine((upstream, ctx) => {
    const seen = new Set<string>();
    upstream.targets.forEach((t, i) => {
      if (seen.has(t.url)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'url'], message: `duplicate target ${t.url}` });
      seen.add(t.url);
    });
  });

export type UpstreamConfig = z.output<typeof upstreamSchema>;
