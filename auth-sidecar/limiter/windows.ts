import { rateLimitKeyHeader, WINDOW_SECONDS, type GatewayConfig, type RouteConfig, type TierConfig, type WindowName } from '../../common/config/schema.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { LimitWindow } from './redis-decider.js';

const WINDOWS = Object.keys(WINDOW_SECONDS) as WindowName[];

export interface LimitSubject {
  consumer: string | undefined;
  clientIp: string;
  headers: Readonly<Record<string, string>>;
  tier: string | undefined;
}

export interface RequestLimits {
  windows: LimitWindow[];
  /** The token's tier claim names no configured tier: the default tier applied instead. */
  tierUnknown: boolean;
}

/**
 * The windows a request on `route` counts against: its tier's (picked by the token's tier
 * claim, else the default tiers), counted per consumer (anonymous callers per ip) across every
 * route, whatever the route counts by; and the route's own, counted per the route's `by`
 * subject. A route without `rate_limit` has none.
 */
export function limitWindows(config: GatewayConfig, route: RouteConfig, who: LimitSubject, keys: RedisKeys): RequestLimits {
  const policy = route.rate_limit;
  if (!policy) return { windows: [], tierUnknown: false };
  const { name: tierName, tier, unknown } = tierOf(config, who);
  const tierSubject = who.consumer ? `consumer:${who.consumer}` : `ip:${who.clientIp}`;
  const routeSubject = routeSubjectOf(route, who);
  const windows: LimitWindow[] = [];
  for (const window of WINDOWS) {
    const tierMax = tier?.[window];
    if (tierMax !== undefined) {
      windows.push({ name: `tier:${tierName}:${window}`, key: keys.rateCounter(`tier:${tierName}`, tierSubject, window), window, max: tierMax, algorithm: tier!.algorithm, burst: tier!.burst ?? tierMax });
    }
    const routeMax = policy[window];
    if (routeMax !== undefined) {
      windows.push({ name: `route:${route.name}:${window}`, key: keys.rateCounter(`route:${route.name}`, routeSubject, window), window, max: routeMax, algorithm: policy.algorithm, burst: policy.burst ?? routeMax });
    }
  }
  return { windows, tierUnknown: unknown };
}

/** The caller's tier; a claim naming no configured tier (own keys only) gets the default one. */
function tierOf(config: GatewayConfig, who: LimitSubject): { name: string | undefined; tier: TierConfig | undefined; unknown: boolean } {
  const fallback = who.consumer ? config.default_tiers.authenticated : config.default_tiers.anonymous;
  const claimed = who.consumer ? who.tier : undefined;
  const unknown = claimed !== undefined && !Object.hasOwn(config.tiers, claimed);
  const name = claimed !== undefined && !unknown ? claimed : fallback;
  return { name, tier: name !== undefined && Object.hasOwn(config.tiers, name) ? config.tiers[name] : undefined, unknown };
}

/** `consumer` counts an anonymous request by its ip; a missing key header falls back to the ip too. */
function routeSubjectOf(route: RouteConfig, who: LimitSubject): string {
  if (route.rate_limit?.by === 'consumer' && who.consumer) return `consumer:${who.consumer}`;
  const header = rateLimitKeyHeader(route);
  const value = header && Object.hasOwn(who.headers, header) ? who.headers[header] : undefined;
  if (value) return `header:${header}:${value.slice(0, 256)}`;
  return `ip:${who.clientIp}`;
}
