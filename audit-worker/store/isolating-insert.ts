/**
 * Stores a batch so that one event the database refuses cannot sink the others: the batch is
 * tried in one statement; when the database refuses its data, it is cut in halves and each half
 * tried again, down to the single event at fault, which is set aside (kept in the rejected
 * table) instead of stored. ~2·log2(n) extra statements per bad event; none for a good batch.
 * Any other error (the database unreachable, shutting down) is thrown, so the job is retried.
 * An event whose time the store does not keep (store.refusal, kept-window.ts) is set aside first,
 * with that code, without a try.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { EventStore } from './event-store.js';
import { isDataError, sqlStateOf } from './sql-error.js';

/** An event the database refused, with the SQLSTATE it gave (e.g. 22P05), or one whose time is not kept (ts_in_future, ts_past_retention). */
export interface SetAside {
  event: AuditEvent;
  sqlstate: string;
}

export interface IsolatedInsertResult {
  /** Events new to the store. */
  stored: number;
  /** Events the database refused, now in the rejected table. */
  setAside: number;
}

export async function insertIsolating(
  store: Pick<EventStore, 'insert' | 'setAside' | 'refusal'>,
  events: readonly AuditEvent[],
  onSetAside: (setAside: SetAside) => void,
): Promise<IsolatedInsertResult> {
  const result: IsolatedInsertResult = { stored: 0, setAside: 0 };
  const kept: AuditEvent[] = [];
  for (const event of events) {
    const refusal = store.refusal(event);
    if (refusal === undefined) {
      kept.push(event);
      continue;
    }
    await store.setAside(event, refusal);
    result.setAside += 1;
    onSetAside({ event, sqlstate: refusal });
  }
  const attempt = async (part: readonly AuditEvent[]): Promise<void> => {
    if (part.length === 0) return;
    try {
      result.stored += await store.insert(part);
      return;
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (part.length === 1) {
        const event = part[0] as AuditEvent;
        const sqlstate = sqlStateOf(err) as string;
        await store.setAside(event, sqlstate);
        result.setAside += 1;
        onSetAside({ event, sqlstate });
        return;
      }
    }
    const half = Math.ceil(part.length / 2);
    await attempt(part.slice(0, half));
    await attempt(part.slice(half));
  };
  await attempt(kept);
  return result;
}
