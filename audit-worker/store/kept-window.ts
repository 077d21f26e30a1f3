/**
 * Which event times the store keeps. Late events are ordinary (a gateway's spool is sent when
 * Redis is back, days later) and are stored in their day's partition, made on demand; but an
 * event from more than a day ahead (a gateway with a wrong clock) would make partitions for
 * days that have not begun, and one older than the retention limit would make a partition that
 * the next retention run drops. Both are set aside instead (audit_events_rejected, with the
 * code below as error_code), never stored and never lost in silence.
 */
import { DAY_MS, dayStart, utcDay } from './partitions.js';

/** error_code of an event set aside for its time (beside the SQLSTATEs of refused data). */
export const TS_IN_FUTURE = 'ts_in_future';
export const TS_PAST_RETENTION = 'ts_past_retention';
export type TsRefusal = typeof TS_IN_FUTURE | typeof TS_PAST_RETENTION;

/** How far ahead of the worker's clock an event may be. */
export const MAX_FUTURE_MS = DAY_MS;

/** The first millisecond retention still keeps: the start of the day holding now - retention. */
export function retentionStart(nowMs: number, retentionDays: number): number {
  return dayStart(utcDay(nowMs - retentionDays * DAY_MS));
}

/** Why an event of time `ts` is not stored, or undefined when it is; no retention given, no lower bound. */
export function tsRefusal(ts: string, nowMs: number, retentionDays?: number): TsRefusal | undefined {
  const ms = Date.parse(ts);
  if (ms > nowMs + MAX_FUTURE_MS) return TS_IN_FUTURE;
  if (retentionDays !== undefined && ms < retentionStart(nowMs, retentionDays)) return TS_PAST_RETENTION;
  return undefined;
}
