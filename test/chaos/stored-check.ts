/**
 * Checks the answers of a steady load against the audit store, by request id: every answered
 * request stored exactly once with the status the client saw.
 */
import pg from 'pg';
import { eventually } from '../helpers/net.js';
import type { Answer } from './steady-load.js';
import type { Traffic } from './report.js';

export interface StoredCheck {
  answered: number;
  missing: string[];
  duplicated: string[];
  wrongStatus: string[];
}

async function storedRows(pgUrl: string, schema: string, ids: string[]): Promise<Map<string, { n: number; status: number }>> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ request_id: string; n: number; status: number }>(
      `SELECT request_id, count(*)::int AS n, min(status) AS status FROM "${schema}".audit_events WHERE request_id = ANY($1) GROUP BY request_id`,
      [ids],
    );
    return new Map(rows.map((r) => [r.request_id, r]));
  } finally {
    await client.end();
  }
}

/** Waits up to `timeoutMs` for every answer to be stored, then reports what is missing or wrong. */
export async function checkStored(pgUrl: string, schema: string, answers: Map<string, Answer>, timeoutMs: number): Promise<StoredCheck> {
  const ids = [...answers.keys()];
  let stored = new Map<string, { n: number; status: number }>();
  await eventually(async () => {
    stored = await storedRows(pgUrl, schema, ids).catch(() => stored);
    return stored.size === ids.length ? true : undefined;
  }, timeoutMs, 'every answer stored').catch(() => undefined); // what is still missing is reported
  return {
    answered: ids.length,
    missing: ids.filter((id) => !stored.has(id)),
    duplicated: ids.filter((id) => (stored.get(id)?.n ?? 0) > 1),
    wrongStatus: ids.filter((id) => stored.has(id) && stored.get(id)?.status !== answers.get(id)?.status),
  };
}

export function traffic(check: StoredCheck): Traffic {
  return { answered: check.answered, stored: check.answered - check.missing.length, lost: check.missing.length, duplicated: check.duplicated.length };
}

export function storedSummary(check: StoredCheck): string {
  return `${check.answered} answered, ${check.missing.length} lost, ${check.duplicated.length} doubled, ${check.wrongStatus.length} wrong status`;
}

export function storedOk(check: StoredCheck): boolean {
  return check.missing.length === 0 && check.duplicated.length === 0 && check.wrongStatus.length === 0;
}
