/**
 * The operator's investigation CLI: `npm run audit -- events --sub alice --since 1h`.
 * Talks to the audit worker's query API at AUDIT_URL with ADMIN_TOKEN (or ./data/admin-token).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliUsageError, getJson, type Api } from './audit/api.js';
import { INVESTIGATION_COMMANDS, INVESTIGATION_USAGE, runInvestigation } from './audit/investigate.js';
import { ALERT_COLUMNS, SECURITY_COLUMNS, table, type Columns } from './audit/views.js';

const USAGE = `usage: audit events [filters] [--limit N] [--json]
       audit alerts [--open] [--rule RULE] [--subject S] [--since TIME] [--limit N] [--json]
       audit ack ALERT_ID
       audit security [--kind ban|unban|revoke|admin_query] [--subject S] [--actor A] [--since TIME] [--limit N] [--json]
       audit verify [--since TIME] [--anchor SEQ:HASH] [--json]
${INVESTIGATION_USAGE}

filters (all optional, combined with AND):
  --sub SUB            token subject
  --consumer ID        consumer id (issuer:sub)
  --client-ip IP       client address
  --route NAME         route name
  --decision allow|deny
  --reason REASON      e.g. token_revoked, rate_limited
  --request-id ID      one request
  --trace-id ID        the requests of one W3C trace (32 hex characters)
  --jti ID             one token
  --status CODE        HTTP status answered, e.g. 401
  --path-prefix TEXT   paths starting with TEXT (no wildcards)
  --kind K             request (default), security (bans, revocations, admin queries) or all (merged,
                       each tagged with source: request|security)
  --since TIME         ISO timestamp or a duration before now: 30s, 15m, 1h, 7d
  --until TIME         same forms as --since
alerts (anomaly alerts, most recently active first):
  --open               only alerts not yet acknowledged
  --rule RULE          e.g. auth_failure_burst, revoked_token_use
  --subject S          an ip, consumer id or jti
  --since TIME         active since (last event at or after) TIME
ack ALERT_ID           acknowledge an alert (it stays stored, status acked)
security (bans, unbans and revocations, by hand or by a rule, newest first):
  --kind K             ban, unban, revoke, admin_query, limit_set, limit_clear, user_add or user_enable
  --subject S          an ip, consumer id or jti
  --actor A            e.g. admin-cli:alice, rule:auth_failure_burst
  --since TIME         at or after TIME
verify (walk the hash chain over stored events; exit 3 when a link is broken):
  --since TIME         from the first link starting at or after TIME (default: the first link)
  --anchor SEQ:HASH    a head logged earlier (audit_chain_sealed: head_seq, head_hash): link SEQ must still have HASH
output:
  --limit N            print at most N events, newest first (default 100)
  --json               print the events as one JSON array
  -h, --help           this text

environment: AUDIT_URL (default http://127.0.0.1:8090), ADMIN_TOKEN (default: contents of ./data/admin-token)
exit codes: 0 ok (verify: intact), 1 API or network error, 2 bad usage, 3 verify: the chain is broken`;

/** CLI flag → query parameter of GET /v1/events. */
const FILTERS = {
  sub: 'sub',
  consumer: 'consumer',
  'client-ip': 'client_ip',
  route: 'route',
  decision: 'decision',
  reason: 'reason',
  'request-id': 'request_id',
  'trace-id': 'trace_id',
  jti: 'jti',
  status: 'status',
  'path-prefix': 'path_prefix',
  kind: 'kind',
  since: 'since',
  until: 'until',
} as const;
const PAGE_MAX = 1000;


type Event = Record<string, unknown>;

function parse(argv: string[]) {
  const options = {
    ...Object.fromEntries(Object.keys(FILTERS).map((flag) => [flag, { type: 'string' as const }])),
    limit: { type: 'string' as const },
    open: { type: 'boolean' as const },
    subject: { type: 'string' as const },
    rule: { type: 'string' as const },
    kind: { type: 'string' as const },
    actor: { type: 'string' as const },
    anchor: { type: 'string' as const },
    json: { type: 'boolean' as const },
    help: { type: 'boolean' as const, short: 'h' },
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  const { positionals } = parsed;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { help: true as const };
  const [command, ...rest] = positionals;
  if (command === 'ack') {
    if (rest.length !== 1) throw new CliUsageError('ack takes one alert id');
    return { help: false as const, command: 'ack' as const, id: rest[0] as string };
  }
  if (command === 'alerts') {
    if (rest.length !== 0) throw new CliUsageError(`unknown command: ${positionals.join(' ')}`);
    const stray = [...Object.keys(FILTERS).filter((flag) => flag !== 'since' && flag !== 'kind'), 'kind', 'actor', 'anchor'].filter((flag) => values[flag] !== undefined);
    if (stray.length > 0) throw new CliUsageError(`alerts does not take --${stray.join(', --')}`);
    const query = new URLSearchParams();
    if (values.open) query.set('status', 'open');
    for (const flag of ['rule', 'subject', 'since', 'limit'] as const) {
      const value = values[flag] as string | undefined;
      if (value !== undefined) query.set(flag, value);
    }
    return { help: false as const, command: 'alerts' as const, query, json: Boolean(values.json) };
  }
  if (command === 'security') {
    if (rest.length !== 0) throw new CliUsageError(`unknown command: ${positionals.join(' ')}`);
    const stray = [...Object.keys(FILTERS).filter((flag) => flag !== 'since' && flag !== 'kind'), 'open', 'rule', 'anchor'].filter((flag) => values[flag] !== undefined);
    if (stray.length > 0) throw new CliUsageError(`security does not take --${stray.join(', --')}`);
    const query = new URLSearchParams();
    for (const flag of ['kind', 'subject', 'actor', 'since', 'limit'] as const) {
      const value = values[flag] as string | undefined;
      if (value !== undefined) query.set(flag, value);
    }
    return { help: false as const, command: 'security' as const, query, json: Boolean(values.json) };
  }
  if (command === 'verify') {
    if (rest.length !== 0) throw new CliUsageError(`unknown command: ${positionals.join(' ')}`);
    const stray = Object.keys(options).filter((flag) => !['since', 'anchor', 'json', 'help'].includes(flag) && values[flag] !== undefined);
    if (stray.length > 0) throw new CliUsageError(`verify does not take --${stray.join(', --')}`);
    const query = new URLSearchParams();
    for (const flag of ['since', 'anchor'] as const) {
      if (values[flag] !== undefined) query.set(flag, values[flag] as string);
    }
    return { help: false as const, command: 'verify' as const, query, json: Boolean(values.json) };
  }
  if (positionals.length !== 1 || command !== 'events') {
    throw new CliUsageError(positionals.length === 0 ? 'missing command (events, alerts, ack, security, verify, trace, timeline, top, after-revocation, export)' : `unknown command: ${positionals.join(' ')}`);
  }
  for (const flag of ['open', 'subject', 'rule', 'actor', 'anchor'] as const) {
    if (values[flag] !== undefined) throw new CliUsageError(`events does not take --${flag}`);
  }
  const limitText = (values.limit as string | undefined) ?? '100';
  if (!/^\d+$/.test(limitText) || Number(limitText) < 1) throw new CliUsageError('--limit must be a positive integer');
  const query = new URLSearchParams();
  for (const [flag, param] of Object.entries(FILTERS)) {
    const value = values[flag] as string | undefined;
    if (value !== undefined) query.set(param, value);
  }
  return { help: false as const, command: 'events' as const, query, limit: Number(limitText), json: Boolean(values.json) };
}

function adminToken(): string {
  const fromEnv = process.env.ADMIN_TOKEN;
  if (fromEnv) return fromEnv;
  try {
    return readFileSync('data/admin-token', 'utf8').trim();
  } catch {
    throw new CliUsageError('ADMIN_TOKEN is not set and ./data/admin-token cannot be read', false);
  }
}

/** Pages of /v1/events until `limit` events or the last page. */
async function fetchEvents(api: Api, query: URLSearchParams, limit: number): Promise<Event[]> {
  const events: Event[] = [];
  let cursor: string | null = null;
  do {
    const page = new URLSearchParams(query);
    page.set('limit', String(Math.min(PAGE_MAX, limit - events.length)));
    if (cursor) page.set('cursor', cursor);
    const body: { events: Event[]; next_cursor: string | null } = await getJson(api, `/v1/events?${page}`);
    events.push(...body.events);
    cursor = body.next_cursor;
  } while (cursor && events.length < limit);
  return events.slice(0, limit);
}

/** A security event in a merged answer (events --kind security|all) shows its kind as the decision. */
const isSecurity = (e: Event): boolean => e.source === 'security';
const COLUMNS: Columns = [
  ['TS', (e) => e.ts],
  ['DECISION', (e) => (isSecurity(e) ? `security:${String(e.kind)}` : e.decision)],
  ['STATUS', (e) => e.status],
  ['REASON/DETAIL', (e) => (isSecurity(e) ? `${String(e.reason)} (by ${String(e.actor)})` : [e.reason, e.detail].filter((v) => v != null).join('/'))],
  ['ROUTE', (e) => e.route],
  ['METHOD', (e) => e.method],
  ['PATH', (e) => e.path],
  ['SUB', (e) => (isSecurity(e) ? `${String(e.subject_kind)}:${String(e.subject)}` : e.sub)],
  ['CLIENT_IP', (e) => e.client_ip],
  ['REQUEST_ID', (e) => e.request_id],
];

/** The query API at AUDIT_URL (default the local worker's), with the admin token. */
function auditApi(): Api {
  return { base: (process.env.AUDIT_URL || 'http://127.0.0.1:8090').replace(/\/+$/, ''), token: adminToken() };
}

async function main(argv: string[]): Promise<number> {
  try {
    if (INVESTIGATION_COMMANDS.has(argv[0] ?? '')) {
      return await runInvestigation(argv, auditApi, USAGE);
    }
    const args = parse(argv);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const api = auditApi();
    if (args.command === 'ack') {
      const alert: Event = await getJson(api, `/v1/alerts/${encodeURIComponent(args.id)}/ack`, 'POST');
      console.log(`acked alert ${String(alert.id)} (${String(alert.rule)} ${String(alert.subject)})`);
      return 0;
    }
    if (args.command === 'security') {
      const { events }: { events: Event[] } = await getJson(api, `/v1/security-events?${args.query}`);
      if (args.json) console.log(JSON.stringify(events, null, 2));
      else console.log(events.length ? table(events, SECURITY_COLUMNS) : '(no security events)');
      return 0;
    }
    if (args.command === 'verify') {
      const report: Event = await getJson(api, `/v1/verify?${args.query}`);
      console.log(args.json ? JSON.stringify(report, null, 2) : String(report.message));
      return report.status === 'intact' ? 0 : 3;
    }
    if (args.command === 'alerts') {
      const { alerts }: { alerts: Event[] } = await getJson(api, `/v1/alerts?${args.query}`);
      if (args.json) console.log(JSON.stringify(alerts, null, 2));
      else console.log(alerts.length ? table(alerts, ALERT_COLUMNS) : '(no alerts)');
      return 0;
    }
    const events = await fetchEvents(api, args.query, args.limit);
    if (args.json) console.log(JSON.stringify(events, null, 2));
    else console.log(events.length ? table(events, COLUMNS) : '(no events)');
    return 0;
  } catch (err) {
    if (err instanceof CliUsageError) {
      console.error(err.showUsage ? `audit: ${err.message}\n\n${USAGE}` : `audit: ${err.message}`);
      return 2;
    }
    console.error(`audit: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
