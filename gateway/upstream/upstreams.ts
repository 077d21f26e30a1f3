/**
 * Every route's upstream, built once: a pool per `upstreams` entry (with its prober when it has
 * `health.probe`), and a one-target pool per plain URL, shared by the routes naming it (one
 * keep-alive agent per target). Each route gets its proxy options per target, built once:
 * http-proxy would otherwise parse the target URL on every request.
 */
import { parse } from 'node:url';
import type HttpProxy from 'http-proxy';
import type { GatewayConfig, RouteConfig } from '../../common/config/schema.js';
import { UpstreamPool } from './pool.js';
import { Prober } from './probe.js';

export interface RouteUpstream {
  pool: UpstreamPool;
  /** The route's proxy options for each target, by Target.index. */
  options: HttpProxy.ServerOptions[];
}

export class Upstreams {
  private readonly byRoute = new Map<RouteConfig, RouteUpstream>();
  private readonly pools: UpstreamPool[] = [];
  private readonly probers: Prober[] = [];

  constructor(config: GatewayConfig) {
    const named = new Map(config.upstreams.map((u) => [u.name, u]));
    const pools = new Map<string, UpstreamPool>();
    for (const route of config.routes) {
      if (route.upstream === undefined) continue;
      let pool = pools.get(route.upstream);
      if (!pool) {
        const entry = named.get(route.upstream);
        pool = entry ? UpstreamPool.of(entry) : UpstreamPool.ofUrl(route.upstream);
        pools.set(route.upstream, pool);
        this.pools.push(pool);
        if (entry?.health.probe) this.probers.push(new Prober(pool, entry.health.probe));
      }
      this.byRoute.set(route, {
        pool,
        // url.parse, not URL: http-proxy reads `path` to keep an upstream's path prefix.
        options: pool.targets.map((t) => ({ target: parse(t.url), agent: t.agent, proxyTimeout: route.upstream_timeout_ms, changeOrigin: !route.preserve_host })),
      });
    }
    for (const prober of this.probers) prober.start();
  }

  /** The route's upstream; undefined for a route that serves rather than proxies. */
  of(route: RouteConfig): RouteUpstream | undefined {
    return this.byRoute.get(route);
  }

  close(): void {
    for (const prober of this.probers) prober.stop();
    for (const pool of this.pools) pool.close();
  }
}
