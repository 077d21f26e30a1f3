/**
 * The investigation commands of `npm run audit --`: trace, timeline, top, after-revocation and
 * export, each a call of the query API (GET /v1/<command>) shown as a table or bars, or `--json`.
 */
import { parseArgs } from 'node:util';
import { CliApiError, CliUsageError, getJson, streamTo, type Api } from './api.js';
import { ALERT_COLUMNS, bars, REQUEST_COLUMNS, section, SECURITY_COLUMNS, table, type BucketView, type Row } from './views.js';

export const INVESTIGATION_USAGE = `       audit trace REQUEST_ID [--json]
       audit timeline --since TIME [--until TIME] [--bucket 1m] [--sub S] [--consumer C] [--ip IP] [--jti J] [--route R] [--json]
       audit top --by ip|sub|consumer|route|reason --since TIME [--until TIME] [--decision allow|deny] [--limit N] [subject flags] [--json]
       audit after-revocation --jti J | --sub S | --consumer ISSUER:SUB [--limit N] [--json]
       audit export --since TIME [--until TIME] [--kind request|security|all]

trace        the request, the alerts and security events citing it, the same token's requests within ±10 minutes
timeline     requests per bucket (default 1m) by decision and reason, a bar each (█ deny, ░ allow)
top          the values of --by with the most requests (--decision deny: the most refused), with counts
after-revocation
             every request that presented the token (or the sub's / consumer's tokens) after its
             revocation, and how many were allowed, in one line to quote; then the requests
export       every event of the range as JSON lines on stdout, oldest first (default --kind all)
             TIME: an ISO timestamp or a duration before now (30s, 15m, 1h, 7d); --until defaults to now`;

export const INVESTIGATION_COMMANDS = new Set(['trace', 'timeline', 'top', 'after-revocation', 'export']);

/** CLI flag → query parameter, per command; every flag takes a value. */
const SUBJECT_FLAGS = { sub: 'sub', consumer: 'consumer', ip: 'client_ip', jti: 'jti', route: 'route' } as const;
const FLAGS: Record<string, Record<string, string>> = {
  trace: {},
  timeline: { ...SUBJECT_FLAGS, since: 'since', until: 'until', bucket: 'bucket' },
  top: { ...SUBJECT_FLAGS, by: 'by', decision: 'decision', since: 'since', until: 'until', limit: 'limit' },
  'after-revocation': { jti: 'jti', sub: 'sub', consumer: 'consumer', limit: 'limit' },
  export: { since: 'since', until: 'until', kind: 'kind' },
};
/** Flags a command cannot do without; checked here so the usage is shown. */
const REQUIRED: Record<string, string[]> = { timeline: ['since'], top: ['by', 'since'], export: ['since'] };

interface Parsed {
  command: string;
  path: string;
  json: boolean;
}

function parse(argv: string[]): Parsed {
  const command = argv[0] ?? '';
  const flags = FLAGS[command] ?? {};
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(1),
      options: { ...Object.fromEntries(Object.keys(flags).map((f) => [f, { type: 'string' as const }])), json: { type: 'boolean' as const } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliUsageError(`${command}: ${(err as Error).message}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const missing = (REQUIRED[command] ?? []).filter((flag) => values[flag] === undefined);
  if (missing.length > 0) throw new CliUsageError(`${command} needs --${missing.join(' and --')}`);
  const query = new URLSearchParams();
  for (const [flag, param] of Object.entries(flags)) {
    const value = values[flag];
    if (typeof value === 'string') query.set(param, value);
  }
  if (command === 'after-revocation' && ['jti', 'sub', 'consumer'].filter((f) => values[f] !== undefined).length !== 1) {
    throw new CliUsageError('after-revocation needs exactly one of --jti, --sub, --consumer');
  }
  if (command === 'trace') {
    if (parsed.positionals.length !== 1) throw new CliUsageError('trace takes one request id');
    return { command, path: `/v1/trace/${encodeURIComponent(parsed.positionals[0]!)}`, json: Boolean(values.json) };
  }
  if (parsed.positionals.length > 0) throw new CliUsageError(`${command} takes no argument: ${parsed.positionals.join(' ')}`);
  return { command, path: `/v1/${command}?${query}`, json: Boolean(values.json) };
}

function render(command: string, body: Record<string, unknown>): string {
  if (command === 'trace') {
    const event = body.event as Row;
    const head = Object.entries(event).map(([key, value]) => `${key.padEnd(16)} ${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
    return [
      `REQUEST ${String(event.request_id)}`,
      ...head,
      '',
      section('ALERTS CITING IT', body.alerts as Row[], ALERT_COLUMNS),
      '',
      section('SECURITY EVENTS (its alerts; its token, consumer or address)', body.security_events as Row[], SECURITY_COLUMNS),
      '',
      section(`SAME TOKEN WITHIN ±10 MINUTES${body.same_token_truncated ? ' (first 1000)' : ''}`, body.same_token as Row[], REQUEST_COLUMNS),
    ].join('\n');
  }
  if (command === 'timeline') {
    const buckets = body.buckets as BucketView[];
    return `${String(body.since)} .. ${String(body.until)}, ${String(body.bucket_s)}s buckets\n${bars(buckets)}`;
  }
  if (command === 'top') {
    const rows = body.rows as Row[];
    return rows.length ? table(rows, [[String(body.by).toUpperCase(), (r) => r.value], ['COUNT', (r) => r.count], ['ALLOW', (r) => r.allow], ['DENY', (r) => r.deny]]) : '(no requests)';
  }
  return [
    String(body.summary),
    '',
    section('REVOCATIONS', body.revocations as Row[], SECURITY_COLUMNS),
    '',
    section('REQUESTS AFTER THE REVOCATION', body.events as Row[], REQUEST_COLUMNS),
  ].join('\n');
}

/**
 * Runs one investigation command; resolves the exit code (0 ok, 1 API or network error, 2 bad
 * usage). `api` is asked for only once the arguments are valid.
 */
export async function runInvestigation(argv: string[], api: () => Api, usage: string): Promise<number> {
  try {
    const args = parse(argv);
    if (args.command === 'export') {
      await streamTo(api(), args.path, process.stdout);
      return 0;
    }
    const body = await getJson<Record<string, unknown>>(api(), args.path);
    console.log(args.json ? JSON.stringify(body, null, 2) : render(args.command, body));
    return 0;
  } catch (err) {
    if (err instanceof CliUsageError) {
      console.error(err.showUsage ? `audit: ${err.message}\n\n${usage}` : `audit: ${err.message}`);
      return 2;
    }
    if (err instanceof CliApiError) {
      console.error(`audit: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
