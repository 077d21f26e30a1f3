import type { RouteConfig } from '../common/config/schema.js';

/** Longest-prefix match on whole segments: `/users` serves `/users` and `/users/7`, not `/usersx`. */
export class RouteTable {
  private readonly prefixes: { prefix: string; route: RouteConfig }[];

  constructor(routes: readonly RouteConfig[]) {
    this.prefixes = routes
      .flatMap((route) => route.paths.map((p) => ({ prefix: p.length > 1 ? p.replace(/\/+$/, '') : '/', route })))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): RouteConfig | undefined {
    for (const { prefix, route } of this.prefixes) {
      if (prefix === '/' || path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)) return route;
    }
    return undefined;
  }
}
