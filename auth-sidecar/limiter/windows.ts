import { rateLimitKeyHeader, WINDOW_SECONDS, type GatewayConfig, type RouteConfig, type WindowName } from '../../common/config/schema.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { LimitWindow } from './redis-decider.js';

const WINDOWS = Object.keys(WINDOW_SECONDS) as WindowName[];

export interface LimitSubject {
  consumer: string | undefined;
  clientIp: string;
  headers: Readonly<Record<string, string>>;
  tier: string | undefined;
}

/**
 * The windows a request on `route` counts against: its tier's (picked by the token's tier
 * claim, or the default tiers) and the route's own, all keyed on the route's `by` subject.
 * A route without `rate_limit` has none.
 */
export function limitWindows(config: GatewayConfig, route: RouteConfig, who: LimitSubject, keys: RedisKeys): LimitWindow[] {
  const policy = route.rate_limit;
  if (!policy) return [];
  const subject = subjectOf(route, who);
  const tierName = who.consumer ? (who.tier ?? config.default_tiers.authenticated) : config.default_tiers.anonymous;
  const tier = config.tiers[tierName];
  const windows: LimitWindow[] = [];
  for (const window of WINDOWS) {
    const tierMax = tier?.[window];
    if (tierMax !== undefined) {
      windows.push({ name: `tier:${tierName}:${window}`, key: keys.rateCounter(`tier:${tierName}`, subject, window), window, max: tierMax });
    }
    const routeMax = policy[window];
    if (routeMax !== undefined) {
      windows.push({ name: `route:${route.name}:${window}`, key: keys.rateCounter(`route:${route.name}`, subject, window), window, max: routeMax });
    }
  }
  return windows;
}

/** `consumer` counts an anonymous request by its ip; a missing key header falls back to the ip too. */
function subjectOf(route: RouteConfig, who: LimitSubject): string {
  if (route.rate_limit?.by === 'consumer' && who.consumer) return `consumer:${who.consumer}`;
  const header = rateLimitKeyHeader(route);
  const value = header && who.headers[header];
  if (value) return `header:${header}:${value.slice(0, 256)}`;
  return `ip:${who.clientIp}`;
}
