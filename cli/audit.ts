/**
 * The operator's investigation CLI: `npm run audit -- events --sub alice --since 1h`.
 * Talks to the audit worker's query API at AUDIT_URL with ADMIN_TOKEN (or ./data/admin-token).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `usage: audit events [filters] [--limit N] [--json]

filters (all optional, combined with AND):
  --sub SUB            token subject
  --consumer ID        consumer id (issuer:sub)
  --client-ip IP       client address
  --route NAME         route name
  --decision allow|deny
  --reason REASON      e.g. token_revoked, rate_limited
  --request-id ID      one request
  --since TIME         ISO timestamp or a duration before now: 30s, 15m, 1h, 7d
  --until TIME         same forms as --since
output:
  --limit N            print at most N events, newest first (default 100)
  --json               print the events as one JSON array
  -h, --help           this text

environment: AUDIT_URL (default http://127.0.0.1:8090), ADMIN_TOKEN (default: contents of ./data/admin-token)
exit codes: 0 ok, 1 API or network error, 2 bad usage`;

/** CLI flag → query parameter of GET /v1/events. */
const FILTERS = {
  sub: 'sub',
  consumer: 'consumer',
  'client-ip': 'client_ip',
  route: 'route',
  decision: 'decision',
  reason: 'reason',
  'request-id': 'request_id',
  since: 'since',
  until: 'until',
} as const;
const PAGE_MAX = 1000;

class UsageError extends Error {
  constructor(message: string, readonly showUsage = true) {
    super(message);
  }
}
class ApiError extends Error {}

type Event = Record<string, unknown>;

function parse(argv: string[]) {
  const options = {
    ...Object.fromEntries(Object.keys(FILTERS).map((flag) => [flag, { type: 'string' as const }])),
    limit: { type: 'string' as const },
    json: { type: 'boolean' as const },
    help: { type: 'boolean' as const, short: 'h' },
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { positionals } = parsed;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { help: true as const };
  if (positionals.length !== 1 || positionals[0] !== 'events') {
    throw new UsageError(positionals.length === 0 ? 'missing command (events)' : `unknown command: ${positionals.join(' ')}`);
  }
  const limitText = (values.limit as string | undefined) ?? '100';
  if (!/^\d+$/.test(limitText) || Number(limitText) < 1) throw new UsageError('--limit must be a positive integer');
  const query = new URLSearchParams();
  for (const [flag, param] of Object.entries(FILTERS)) {
    const value = values[flag] as string | undefined;
    if (value !== undefined) query.set(param, value);
  }
  return { help: false as const, query, limit: Number(limitText), json: Boolean(values.json) };
}

function adminToken(): string {
  const fromEnv = process.env.ADMIN_TOKEN;
  if (fromEnv) return fromEnv;
  try {
    return readFileSync('data/admin-token', 'utf8').trim();
  } catch {
    throw new UsageError('ADMIN_TOKEN is not set and ./data/admin-token cannot be read', false);
  }
}

async function fetchEvents(base: string, token: string, query: URLSearchParams, limit: number): Promise<Event[]> {
  const events: Event[] = [];
  let cursor: string | null = null;
  do {
    const page = new URLSearchParams(query);
    page.set('limit', String(Math.min(PAGE_MAX, limit - events.length)));
    if (cursor) page.set('cursor', cursor);
    const url = `${base.replace(/\/+$/, '')}/v1/events?${page}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    } catch (err) {
      throw new ApiError(`cannot reach the audit API at ${base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    const body = (await res.json().catch(() => ({}))) as { events?: Event[]; next_cursor?: string | null; error?: string };
    if (!res.ok) {
      const message = `the audit API answered ${res.status}: ${body.error ?? res.statusText}`;
      // A filter the API refuses is the operator's input: report it as bad usage.
      throw res.status === 400 ? new UsageError(message, false) : new ApiError(message);
    }
    events.push(...(body.events ?? []));
    cursor = body.next_cursor ?? null;
  } while (cursor && events.length < limit);
  return events.slice(0, limit);
}

const COLUMNS: [string, (e: Event) => unknown][] = [
  ['TS', (e) => e.ts],
  ['DECISION', (e) => e.decision],
  ['STATUS', (e) => e.status],
  ['REASON/DETAIL', (e) => [e.reason, e.detail].filter((v) => v != null).join('/')],
  ['ROUTE', (e) => e.route],
  ['METHOD', (e) => e.method],
  ['PATH', (e) => e.path],
  ['SUB', (e) => e.sub],
  ['CLIENT_IP', (e) => e.client_ip],
  ['REQUEST_ID', (e) => e.request_id],
];

function cell(value: unknown): string {
  const text = value == null || value === '' ? '-' : String(value).replace(/[\x00-\x1f\x7f]/g, '?');
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function table(events: Event[]): string {
  const rows = [COLUMNS.map(([title]) => title), ...events.map((e) => COLUMNS.map(([, get]) => cell(get(e))))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

async function main(argv: string[]): Promise<number> {
  try {
    const args = parse(argv);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const events = await fetchEvents(process.env.AUDIT_URL || 'http://127.0.0.1:8090', adminToken(), args.query, args.limit);
    if (args.json) console.log(JSON.stringify(events, null, 2));
    else console.log(events.length ? table(events) : '(no events)');
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.showUsage ? `audit: ${err.message}\n\n${USAGE}` : `audit: ${err.message}`);
      return 2;
    }
    console.error(`audit: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
