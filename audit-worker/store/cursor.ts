/**
 * The keyset-pagination cursor: the (ts, event_id) of the last event of a page, opaque to
 * callers (base64url of JSON). `ts` keeps PostgreSQL's microseconds so no event is skipped.
 */
import { z } from 'zod';
import { inTimeRange } from './time-range.js';

export interface Cursor {
  /** UTC timestamp with microseconds, e.g. 2025-01-02T03:04:05.123456Z. */
  ts: string;
  event_id: string;
}

const cursorSchema = z.tuple([z.iso.datetime({ offset: true }), z.uuid()]);

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.ts, cursor.event_id])).toString('base64url');
}

/** The cursor, or undefined when the text is not one this store issued. */
export function decodeCursor(text: string): Cursor | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = cursorSchema.safeParse(value);
  if (!parsed.success || !inTimeRange(Date.parse(parsed.data[0]))) return undefined;
  return { ts: parsed.data[0], event_id: parsed.data[1] };
}
