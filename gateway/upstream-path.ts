import type { RouteMatch } from './route-table.js';

/**
 * The path sent upstream for a normalized request path: as is, or with the matched prefix
 * removed (`strip_path`) or replaced (`rewrite`). The rest of the path is the normalized one the
 * sidecar authorized, never the raw target; the upstream URL's own path still comes first
 * (http-proxy joins it).
 */
export function upstreamPath({ route, prefix }: RouteMatch, path: string): string {
  if (!route.strip_path && route.rewrite === undefined) return path;
  const rest = prefix === '/' ? path : path.slice(prefix.length);
  const base = route.rewrite === undefined || route.rewrite === '/' ? '' : route.rewrite.replace(/\/+$/, '');
  const joined = base + rest;
  return joined === '' ? '/' : joined;
}
