/** The rate-limit headers of an answer, in the style its route asks for (`rate_limit.headers`). */
import type { LIMIT_HEADER_STYLES } from '../../common/config/schema.js';
import { WINDOW_SECONDS, type WindowName } from '../../common/config/schema.js';
import type { LimitReport, LimitWindow } from '../limiter/redis-decider.js';

export type LimitHeaderStyle = (typeof LIMIT_HEADER_STYLES)[number];

/** `Minute` of `minute`: Kong's spelling in X-RateLimit-Limit-Minute. */
const KONG_SUFFIX = Object.fromEntries(Object.keys(WINDOW_SECONDS).map((w) => [w, w[0]!.toUpperCase() + w.slice(1)])) as Record<WindowName, string>;

/**
 * ietf: the IETF draft's RateLimit-Limit, -Remaining, -Reset and -Policy for `limit` (the
 * refusing or tightest window), as Envoy and Kong send them; kong: X-RateLimit-Limit-<Window> and
 * X-RateLimit-Remaining-<Window> for every window size counted (of several limits of one size,
 * the one with least left). Shadow windows are never shown: they do not limit the client.
 */
export function limitHeaders(style: LimitHeaderStyle, limit: LimitReport | undefined, windows: readonly LimitWindow[], remaining: readonly number[]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (limit && (style === 'ietf' || style === 'both')) {
    headers['RateLimit-Limit'] = String(limit.max);
    headers['RateLimit-Remaining'] = String(limit.remaining);
    headers['RateLimit-Reset'] = String(limit.resetSeconds);
    headers['RateLimit-Policy'] = `${limit.max};w=${WINDOW_SECONDS[limit.window]}`;
  }
  if (style === 'kong' || style === 'both') {
    const least = new Map<WindowName, { max: number; remaining: number }>();
    windows.forEach((window, i) => {
      const left = remaining[i];
      if (window.shadow || left === undefined) return;
      const before = least.get(window.window);
      if (!before || left < before.remaining) least.set(window.window, { max: window.max, remaining: left });
    });
    for (const [window, { max, remaining: left }] of least) {
      headers[`X-RateLimit-Limit-${KONG_SUFFIX[window]}`] = String(max);
      headers[`X-RateLimit-Remaining-${KONG_SUFFIX[window]}`] = String(left);
    }
  }
  return headers;
}
