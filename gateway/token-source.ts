/**
 * Where a route's token is read (`auth.token`): the Authorization header always comes first;
 * then, when configured, a named cookie, then a query parameter. The token found is sent to the
 * sidecar as `Authorization: Bearer <token>`, so it is verified the same way whatever carried
 * it. A configured query parameter is always taken out of the URL the upstream receives, so the
 * token never reaches upstream logs. Two of the chosen kind (two cookies or two parameters of
 * that name) count as two tokens: refused as `multiple_tokens`, since which was meant is
 * unknowable.
 */
import type { IncomingMessage } from 'node:http';
import type { RouteConfig } from '../common/config/schema.js';
import { authorizationCount } from './authorization-count.js';
import { cookieValues } from '../common/cookies.js';

export interface TokenSource {
  /** The Authorization value to send the sidecar, if any. */
  authorization: string | undefined;
  /** How many tokens of the kind chosen the request carries. */
  count: number;
  /** The query string for the upstream (`?…`, or ''), without the token parameter. */
  search: string;
}

export function tokenSource(req: IncomingMessage, route: RouteConfig, search: string): TokenSource {
  const { cookie, query } = route.auth.token;
  const header = req.headers.authorization;
  if (cookie === undefined && query === undefined) return { authorization: header, count: header === undefined ? 0 : authorizationCount(req), search };
  const inQuery = query === undefined ? { values: [], rest: search } : takeParameter(search, query);
  if (header !== undefined) return { authorization: header, count: authorizationCount(req), search: inQuery.rest };
  const inCookie = cookie === undefined ? [] : cookieValues(req.headers.cookie, cookie);
  const found = inCookie.length > 0 ? inCookie : inQuery.values;
  return { authorization: found.length > 0 ? `Bearer ${found[0]}` : undefined, count: found.length, search: inQuery.rest };
}

/** The values of parameter `name` in a query string, and the query string without it. */
function takeParameter(search: string, name: string): { values: string[]; rest: string } {
  if (search.length <= 1) return { values: [], rest: search };
  const values: string[] = [];
  const kept: string[] = [];
  for (const pair of search.slice(1).split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (safeDecode(key) === name) values.push(safeDecode(eq < 0 ? '' : pair.slice(eq + 1)));
    else kept.push(pair);
  }
  return { values, rest: kept.length > 0 ? `?${kept.join('&')}` : '' };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}
