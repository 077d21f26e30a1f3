import type { RouteConfig } from '../common/config/schema.js';

/** A route found for a request, and the prefix of its `paths` that matched (for strip_path and rewrite). */
export interface RouteMatch {
  route: RouteConfig;
  prefix: string;
}

/** How well a request's Host fits a route: an exact name beats a wildcard, which beats a route without hosts. */
const enum HostFit {
  None = -1,
  Hostless = 0,
  Wildcard = 1,
  Exact = 2,
}

interface Entry {
  prefix: string;
  route: RouteConfig;
  exactHosts: ReadonlySet<string> | undefined;
  /** `*.example.com` kept as `.example.com`. */
  wildcardSuffixes: readonly string[];
  methods: ReadonlySet<string> | undefined;
}

/**
 * Picks a request's route (README "Routing"): among the routes whose `hosts` fit the request's
 * Host (exact, then wildcard; a route without hosts fits every Host, below both) and one of whose
 * paths is a prefix of the normalized path on a segment boundary, the best Host fit wins, then the
 * longest prefix; a route whose `methods` lack the request's method is passed over for the next.
 * When routes fit the Host and path but none the method, `allowedMethods` names theirs (405).
 */
export class RouteTable {
  private readonly entries: Entry[];
  /** No route names hosts: the first entry whose path fits wins (the common case, one pass). */
  private readonly hostless: boolean;

  constructor(routes: readonly RouteConfig[]) {
    this.entries = routes
      .flatMap((route) =>
        route.paths.map((p) => ({
          prefix: p.length > 1 ? p.replace(/\/+$/, '') : '/',
          route,
          exactHosts: route.hosts ? new Set(route.hosts.filter((h) => !h.startsWith('*.'))) : undefined,
          wildcardSuffixes: (route.hosts ?? []).filter((h) => h.startsWith('*.')).map((h) => h.slice(1)),
          methods: route.methods ? new Set(route.methods) : undefined,
        })),
      )
      .sort((a, b) => b.prefix.length - a.prefix.length);
    this.hostless = routes.every((r) => r.hosts === undefined);
  }

  /** The route of a path, whatever the Host and method (`resolve` with neither). */
  match(path: string): RouteConfig | undefined {
    return this.resolve(path, undefined, undefined)?.route;
  }

  /** `host` as the Host header sent it (any case, with or without a port); `method` undefined: any. */
  resolve(path: string, host: string | undefined, method: string | undefined): RouteMatch | undefined {
    const name = this.hostless ? '' : hostName(host);
    let best: Entry | undefined;
    let bestFit = HostFit.None;
    for (const entry of this.entries) {
      if (!pathFits(entry.prefix, path)) continue;
      if (method !== undefined && entry.methods && !entry.methods.has(method)) continue;
      const fit = this.hostless ? HostFit.Hostless : hostFit(entry, name);
      if (fit > bestFit) {
        best = entry;
        bestFit = fit;
        // Entries come longest first: nothing later can fit better than the first exact host (or, without hosts, the first at all).
        if (fit === HostFit.Exact || this.hostless) break;
      }
    }
    return best && { route: best.route, prefix: best.prefix };
  }

  /** The methods of the routes that fit the Host and path (for a 405's `Allow`), sorted; [] when none names methods. */
  allowedMethods(path: string, host: string | undefined): string[] {
    const name = hostName(host);
    const methods = new Set<string>();
    for (const entry of this.entries) {
      if (entry.methods && pathFits(entry.prefix, path) && hostFit(entry, name) !== HostFit.None) for (const m of entry.methods) methods.add(m);
    }
    return [...methods].sort();
  }
}

function pathFits(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47);
}

function hostFit(entry: Entry, name: string): HostFit {
  if (!entry.exactHosts) return HostFit.Hostless;
  if (entry.exactHosts.has(name)) return HostFit.Exact;
  return entry.wildcardSuffixes.some((suffix) => name.length > suffix.length && name.endsWith(suffix)) ? HostFit.Wildcard : HostFit.None;
}

/** The Host header's name, lower-case, without its port (`[::1]:8080` is `[::1]`). */
function hostName(host: string | undefined): string {
  if (host === undefined) return '';
  const lower = host.toLowerCase();
  const colon = lower.lastIndexOf(':');
  return colon > lower.lastIndexOf(']') ? lower.slice(0, colon) : lower;
}
