import { WINDOW_NAMES, type GatewayConfig, type LimitAlgorithm, type LimitByPart, type LimitOverride, type RouteConfig, type TierConfig, type WindowName } from '../../common/config/schema.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { LimitWindow } from './redis-decider.js';

export interface LimitSubject {
  consumer: string | undefined;
  /** The token's id (`by: credential`). */
  jti: string | undefined;
  clientIp: string;
  headers: Readonly<Record<string, string>>;
  tier: string | undefined;
}

export interface RequestLimits {
  windows: LimitWindow[];
  /** What the request counts as in each window (its route's cost). */
  cost: number;
  /** The token's tier claim names no configured tier: the default tier applied instead. */
  tierUnknown: boolean;
}

/** A tier, or a consumer's override of it: its windows and how they count. */
interface Limit {
  max: Partial<Record<WindowName, number>>;
  algorithm: LimitAlgorithm;
  burst: number | undefined;
  shadow: boolean;
  countRefused: boolean;
}

/**
 * The windows a request on `route` counts against: its tier's (picked by the token's tier
 * claim, else the default tiers; a consumer's override in its place), counted per consumer
 * (anonymous callers per ip) across every route, whatever the route counts by; and the route's
 * own, counted per the route's `by` subject. A route without `rate_limit` has none.
 */
export function limitWindows(config: GatewayConfig, route: RouteConfig, who: LimitSubject, keys: RedisKeys, overrideOf: (consumer: string) => LimitOverride | undefined = () => undefined): RequestLimits {
  const policy = route.rate_limit;
  if (!policy) return { windows: [], cost: 1, tierUnknown: false };
  const { name: tierName, tier, unknown } = tierOf(config, who);
  const override = who.consumer === undefined ? undefined : overrideOf(who.consumer);
  const tierLimit = override ? overridden(tier, override) : tier && limitOf(tier);
  const tierScope = `tier:${tierName ?? '-'}`;
  const tierLabel = override ? `override:${tierName ?? '-'}` : tierScope;
  const tierSubject = who.consumer ? `consumer:${who.consumer}` : `ip:${who.clientIp}`;
  const routeScope = `route:${route.name}`;
  const routeSubjects = routeSubjectsOf(route.name, policy.by, who);
  const routeLimit = limitOf(policy);
  const windows: LimitWindow[] = [];
  for (const window of WINDOW_NAMES) {
    if (tierLimit?.max[window] !== undefined) windows.push(windowOf(tierLimit, window, `${tierLabel}:${window}`, keys.rateCounter(tierScope, [tierSubject], window)));
    if (routeLimit.max[window] !== undefined) windows.push(windowOf(routeLimit, window, `${routeScope}:${window}`, keys.rateCounter(routeScope, routeSubjects, window)));
  }
  return { windows, cost: policy.cost, tierUnknown: unknown };
}

function windowOf(limit: Limit, window: WindowName, name: string, key: string): LimitWindow {
  const max = limit.max[window]!;
  return { name, key, window, max, algorithm: limit.algorithm, burst: limit.burst ?? max, shadow: limit.shadow, countRefused: limit.countRefused };
}

function limitOf(limit: TierConfig | NonNullable<RouteConfig['rate_limit']>): Limit {
  const max: Partial<Record<WindowName, number>> = {};
  for (const window of WINDOW_NAMES) if (limit[window] !== undefined) max[window] = limit[window];
  return { max, algorithm: limit.algorithm, burst: limit.burst, shadow: limit.shadow, countRefused: limit.count_refused };
}

/** A consumer's override in place of its tier: the tier scaled (none: no limit), or windows of its own. */
function overridden(tier: TierConfig | undefined, override: LimitOverride): Limit | undefined {
  const scale = override.scale;
  if (scale !== undefined) {
    if (!tier) return undefined;
    const base = limitOf(tier);
    const scaled = (n: number): number => Math.max(1, Math.round(n * scale));
    for (const window of WINDOW_NAMES) if (base.max[window] !== undefined) base.max[window] = scaled(base.max[window]);
    return { ...base, burst: base.burst === undefined ? undefined : scaled(base.burst) };
  }
  const max: Partial<Record<WindowName, number>> = {};
  for (const window of WINDOW_NAMES) if (override[window] !== undefined) max[window] = override[window];
  const algorithm = override.algorithm ?? tier?.algorithm ?? 'fixed';
  return { max, algorithm, burst: override.burst ?? (algorithm === tier?.algorithm ? tier.burst : undefined), shadow: tier?.shadow ?? false, countRefused: tier?.count_refused ?? false };
}

/** The caller's tier; a claim naming no configured tier (own keys only) gets the default one. */
function tierOf(config: GatewayConfig, who: LimitSubject): { name: string | undefined; tier: TierConfig | undefined; unknown: boolean } {
  const fallback = who.consumer ? config.default_tiers.authenticated : config.default_tiers.anonymous;
  const claimed = who.consumer ? who.tier : undefined;
  const unknown = claimed !== undefined && !Object.hasOwn(config.tiers, claimed);
  const name = claimed !== undefined && !unknown ? claimed : fallback;
  return { name, tier: name !== undefined && Object.hasOwn(config.tiers, name) ? config.tiers[name] : undefined, unknown };
}

/**
 * What a route's limit counts by, each part as a subject: consumer (anonymous: the ip),
 * credential (the token id; else as consumer), ip, a header's value (absent: the ip), route
 * (everyone together; with other parts it adds nothing, the key names the route already).
 * Parts that fall back to the same subject count once.
 */
function routeSubjectsOf(routeName: string, by: readonly LimitByPart[], who: LimitSubject): [string, ...string[]] {
  const ip = `ip:${who.clientIp}`;
  const consumer = who.consumer ? `consumer:${who.consumer}` : ip;
  const subjects = new Set<string>();
  for (const part of by) {
    if (part === 'consumer') subjects.add(consumer);
    else if (part === 'credential') subjects.add(who.jti ? `jti:${who.jti}` : consumer);
    else if (part === 'ip') subjects.add(ip);
    else if (part === 'route') {
      if (by.length === 1) subjects.add(`route:${routeName}`);
    } else {
      const header = part.slice('header:'.length);
      const value = Object.hasOwn(who.headers, header) ? who.headers[header] : undefined;
      subjects.add(value ? `header:${header}:${value.slice(0, 256)}` : ip);
    }
  }
  return [...subjects] as [string, ...string[]];
}
