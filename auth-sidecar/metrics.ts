/**
 * The sidecar's metrics (README: Metrics). Label values are bounded: route names from the
 * config (a name the config does not have is `(unknown)`), reasons from common/errors.ts.
 */
import { Counter, Histogram } from 'prom-client';
import type { CheckResponse } from '../common/proto.js';
import { counterReading, gaugeReading, LATENCY_BUCKETS, processRegistry } from '../common/metrics.js';

const UNKNOWN_ROUTE = '(unknown)';

interface Counted {
  inc(): void;
}

export interface SidecarReadings {
  tokenCache: { hits: number; misses: number };
  /** 1 while the Redis circuit breaker is open (or half-open), else 0. */
  breakerOpen: () => number;
}

export class SidecarMetrics {
  readonly registry = processRegistry();
  private readonly decisions = new Counter({ name: 'sidecar_decisions_total', help: 'Decisions answered, by decision and reason (empty when allowed)', labelNames: ['decision', 'reason'], registers: [this.registry] });
  private readonly failOpen = new Counter({ name: 'sidecar_fail_open_total', help: 'Requests allowed unchecked because Redis could not decide, by route', labelNames: ['route'], registers: [this.registry] });
  private readonly shadow = new Counter({ name: 'sidecar_shadow_would_deny_total', help: 'Requests a shadow limit would have refused (let through), by route', labelNames: ['route'], registers: [this.registry] });
  private readonly redisCalls = new Histogram({ name: 'sidecar_redis_call_duration_seconds', help: 'One decide.lua call (a batch of decisions) to Redis', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly children = new Map<string, Counted>();
  private routes: ReadonlySet<string>;

  constructor(routes: readonly string[], readings?: SidecarReadings) {
    this.routes = new Set(routes);
    if (!readings) return;
    counterReading(this.registry, 'sidecar_token_cache_hits_total', 'Tokens answered from the verified-token cache', () => readings.tokenCache.hits);
    counterReading(this.registry, 'sidecar_token_cache_misses_total', 'Tokens verified afresh (not in the cache)', () => readings.tokenCache.misses);
    gaugeReading(this.registry, 'sidecar_redis_breaker_open', '1 while the Redis circuit breaker is open or probing, else 0', readings.breakerOpen);
  }

  /** The route names a label may take (a reloaded config's). */
  useRoutes(routes: readonly string[]): void {
    this.routes = new Set(routes);
  }

  decided(route: string, response: CheckResponse): void {
    const decision = response.allow ? 'allow' : 'deny';
    const reason = response.reason ?? '';
    const key = `${decision}\n${reason}`;
    let counter = this.children.get(key);
    if (!counter) this.children.set(key, (counter = this.decisions.labels(decision, reason)));
    counter.inc();
    if (response.fail_open) this.failOpen.labels(this.routeLabel(route)).inc();
    if (response.shadow) this.shadow.labels(this.routeLabel(route)).inc();
  }

  redisCall(ms: number): void {
    this.redisCalls.observe(ms / 1000);
  }

  private routeLabel(route: string): string {
    return this.routes.has(route) ? route : UNKNOWN_ROUTE;
  }
}
