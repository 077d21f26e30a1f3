/** Terminal views of the investigation answers: tables, a bar per timeline bucket, key: value blocks. */

export type Row = Record<string, unknown>;
export type Columns = [string, (row: Row) => unknown][];

/** One cell: control characters shown as `?` (a value must not forge lines), long values cut. */
export function cell(value: unknown, max = 60): string {
  const text = value == null || value === '' ? '-' : String(value).replace(/[\x00-\x1f\x7f]/g, '?');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function table(rows: Row[], columns: Columns): string {
  const cells = [columns.map(([title]) => title), ...rows.map((r) => columns.map(([, get]) => cell(get(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells.map((c) => c.map((text, i) => text.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export const REQUEST_COLUMNS: Columns = [
  ['TS', (e) => e.ts],
  ['DECISION', (e) => (e.fail_open ? `${String(e.decision)} (fail_open)` : e.decision)],
  ['STATUS', (e) => e.status],
  ['REASON/DETAIL', (e) => [e.reason, e.detail].filter((v) => v != null).join('/')],
  ['ROUTE', (e) => e.route],
  ['PATH', (e) => e.path],
  ['SUB', (e) => e.sub],
  ['CLIENT_IP', (e) => e.client_ip],
  ['REQUEST_ID', (e) => e.request_id],
];

export const SECURITY_COLUMNS: Columns = [
  ['TS', (e) => e.ts],
  ['KIND', (e) => e.kind],
  ['SUBJECT', (e) => `${String(e.subject_kind)}:${String(e.subject)}`],
  ['ACTOR', (e) => e.actor],
  ['UNTIL', (e) => (e.kind === 'revoke' || e.kind === 'ban' ? (e.until ?? 'until lifted') : '-')],
  ['REASON', (e) => e.reason],
  ['ALERT', (e) => e.alert_id],
];

export const ALERT_COLUMNS: Columns = [
  ['ID', (a) => a.id],
  ['STATUS', (a) => a.status],
  ['SEVERITY', (a) => a.severity],
  ['RULE', (a) => a.rule],
  ['SUBJECT', (a) => `${String(a.subject_kind)}:${String(a.subject)}`],
  ['COUNT', (a) => a.count],
  ['LAST_TS', (a) => a.last_ts],
  ['ACTION', (a) => (a.shadow ? `${String(a.action)} (shadow)` : a.allow_listed ? `${String(a.action)} (allow-listed)` : a.action)],
];

/** A titled section: the table, or `(none)`. */
export function section(title: string, rows: Row[], columns: Columns): string {
  return `${title}\n${rows.length ? table(rows, columns) : '(none)'}`;
}

export interface BucketView {
  start: string;
  allow: number;
  deny: number;
  counts: { decision: string; reason: string | null; count: number }[];
}

/**
 * One line per bucket: its start, a bar (`█` denied, `░` allowed) scaled to the largest bucket
 * over `width` characters (a non-empty part is at least one character), the counts, and the
 * bucket's three largest deny reasons.
 */
export function bars(buckets: BucketView[], width = 40): string {
  const largest = Math.max(1, ...buckets.map((b) => b.allow + b.deny));
  const part = (n: number): number => (n === 0 ? 0 : Math.max(1, Math.round((n / largest) * width)));
  const lines = buckets.map((b) => {
    const bar = `${'█'.repeat(part(b.deny))}${'░'.repeat(part(b.allow))}`;
    const reasons = b.counts
      .filter((c) => c.decision === 'deny')
      .slice(0, 3)
      .map((c) => `${cell(c.reason ?? 'none', 32)} ${c.count}`)
      .join(', ');
    return `${b.start}  ${bar.padEnd(width + 1)} ${String(b.allow).padStart(6)} allow ${String(b.deny).padStart(6)} deny${reasons ? `  ${reasons}` : ''}`;
  });
  return ['█ deny  ░ allow', ...lines].join('\n');
}
