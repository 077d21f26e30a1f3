import type { RouteConfig } from '../../common/config/schema.js';

/** True when the route has no ACL, or the caller is in one of its allowed groups. */
export function aclAllows(route: RouteConfig, groups: readonly string[]): boolean {
  const allow = route.acl?.allow;
  return !allow || groups.some((g) => allow.includes(g));
}

/** The route's required scopes the token lacks (none: it may pass). */
export function missingScopes(route: RouteConfig, scopes: readonly string[]): string[] {
  return route.auth.required_scopes.filter((s) => !scopes.includes(s));
}
