/**
 * Cuts an audit event's text fields to AUDIT_TEXT_LIMITS before it is published, so the worker
 * never drops an event for a value it cannot hold (a path may be 8,192 characters, a user agent
 * anything the client sends). Cuts fall between code points, never inside a surrogate pair.
 */
import { AUDIT_TEXT_LIMITS, type AuditEvent, type TruncatableField } from '../../common/audit-event.js';

type TopLevelField = Exclude<TruncatableField, 'rate_limit.limit'>;
const TOP_LEVEL_FIELDS = (Object.keys(AUDIT_TEXT_LIMITS) as TruncatableField[]).filter((f): f is TopLevelField => f !== 'rate_limit.limit');

/** `text` cut to at most `max` code points; `text` itself when it fits. */
export function cutToCodePoints(text: string, max: number): string {
  // A code point is one or two UTF-16 units: within `max` units it fits whatever it holds.
  if (text.length <= max) return text;
  let units = 0;
  let points = 0;
  while (units < text.length && points < max) {
    const code = text.charCodeAt(units);
    const pair = code >= 0xd800 && code <= 0xdbff && units + 1 < text.length && isLowSurrogate(text.charCodeAt(units + 1));
    units += pair ? 2 : 1;
    points += 1;
  }
  return units === text.length ? text : text.slice(0, units);
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Cuts every over-long text field of `event` in place and sets `truncated` to the fields cut. */
export function fitToLimits(event: AuditEvent): AuditEvent {
  let truncated: TruncatableField[] | undefined;
  for (const field of TOP_LEVEL_FIELDS) {
    const value = event[field];
    if (value === null) continue;
    const cut = cutToCodePoints(value, AUDIT_TEXT_LIMITS[field]);
    if (cut === value) continue;
    event[field] = cut;
    (truncated ??= []).push(field);
  }
  const rateLimit = event.rate_limit;
  if (rateLimit) {
    const cut = cutToCodePoints(rateLimit.limit, AUDIT_TEXT_LIMITS['rate_limit.limit']);
    if (cut !== rateLimit.limit) {
      event.rate_limit = { ...rateLimit, limit: cut };
      (truncated ??= []).push('rate_limit.limit');
    }
  }
  event.truncated = truncated ?? [];
  return event;
}
