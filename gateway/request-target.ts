/**
 * Normalizes the request target before routing, so `/users/../payments`, `/users//x`,
 * `/%75sers` and `/users/.` route (and reach the upstream) as what they really name.
 */
export interface RequestTarget {
  /** Dot segments resolved, empty segments dropped, unreserved characters decoded. */
  path: string;
  /** `?...` as received, or ''. */
  search: string;
  /**
   * The path holds `%2F` or `%5C`: an upstream that decodes them before resolving dot segments
   * reads `/users/..%2Fpayments` as `/payments`. Refused unless the route opts in.
   */
  encodedSlash: boolean;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const PCHAR = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/;
const ENCODED_SLASH = /%(?:2f|5c)/i;
/** NUL and the other control characters: C servers and file systems cut or misread a path there. */
const ENCODED_CONTROL = /%(?:[01][0-9a-f]|7f)/i;

/** Returns undefined for a target that is not an origin-form path of valid characters. */
export function normalizeTarget(url: string): RequestTarget | undefined {
  if (url.length === 0 || url[0] !== '/' || url.length > 8192) return undefined;
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const search = queryAt === -1 ? '' : url.slice(queryAt);
  const out: string[] = [];
  let encodedSlash = false;
  const segments = rawPath.split('/');
  for (let i = 1; i < segments.length; i++) {
    const raw = segments[i] as string;
    if (!PCHAR.test(raw)) return undefined;
    let segment = raw;
    if (raw.includes('%')) {
      if (ENCODED_CONTROL.test(raw)) return undefined;
      if (ENCODED_SLASH.test(raw)) encodedSlash = true;
      segment = decodeUnreserved(raw);
    }
    // Tomcat and Spring drop `;parameters` before resolving dot segments: `..;` is `..` to them.
    if (segment.includes(';') && isDotSegment(segment.slice(0, segment.indexOf(';')))) return undefined;
    if (segment === '..') out.pop();
    else if (segment !== '.' && segment !== '') out.push(segment);
  }
  const trailing = rawPath.length > 1 && rawPath.endsWith('/') && out.length > 0 ? '/' : '';
  return { path: `/${out.join('/')}${trailing}`, search, encodedSlash };
}

function isDotSegment(segment: string): boolean {
  return segment === '.' || segment === '..';
}

/** Decodes %XX only where XX is unreserved (RFC 3986 §6.2.2.2); upper-cases the rest. */
function decodeUnreserved(segment: string): string {
  return segment.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}
