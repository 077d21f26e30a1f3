/**
 * The chaos suite's table: every hostile input and fault case records one row (case, expected,
 * observed, pass), and every traffic check adds its counts. The root hook in
 * `report-hooks.ts` prints the table and the totals once all tests have run.
 */
export interface CaseRow {
  kind: 'hostile input' | 'fault';
  name: string;
  expected: string;
  observed: string;
  pass: boolean;
}

export interface Traffic {
  /** Requests the clients saw answered. */
  answered: number;
  /** Events stored for them (by request_id). */
  stored: number;
  lost: number;
  duplicated: number;
}

const rows: CaseRow[] = [];
const traffic: Traffic = { answered: 0, stored: 0, lost: 0, duplicated: 0 };

/** Records one case; returns `row.pass` so a test can assert on it after recording. */
export function recordCase(row: CaseRow): boolean {
  rows.push(row);
  return row.pass;
}

export function addTraffic(counts: Traffic): void {
  traffic.answered += counts.answered;
  traffic.stored += counts.stored;
  traffic.lost += counts.lost;
  traffic.duplicated += counts.duplicated;
}

/** The table as text, or '' when no case was recorded. */
export function renderTable(): string {
  if (rows.length === 0 && traffic.answered === 0) return '';
  const header: [string, string, string, string, string] = ['kind', 'case', 'expected', 'observed', 'pass'];
  const body = rows.map((r): [string, string, string, string, string] => [r.kind, r.name, r.expected, r.observed, r.pass ? 'yes' : 'NO']);
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((r) => r[i]!.length))));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const hostile = rows.filter((r) => r.kind === 'hostile input');
  const faults = rows.filter((r) => r.kind === 'fault');
  return [
    line(header),
    ...body.map(line),
    '',
    `hostile inputs: ${hostile.length} tried, ${hostile.filter((r) => r.pass).length} refused as expected`,
    `faults: ${faults.length} tried, ${faults.filter((r) => r.pass).length} survived`,
    `requests answered: ${traffic.answered}, events stored: ${traffic.stored}, lost: ${traffic.lost}, duplicated: ${traffic.duplicated}`,
  ].join('\n');
}
