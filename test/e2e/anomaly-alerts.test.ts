/**
 * Anomaly alerts through the running product: refused tokens and revoked tokens reach the
 * audit worker as events, its rules raise alerts in the store and ban in Redis, and the
 * sidecar refuses the banned ip. Client ips are loopback addresses (127.0.0.x) bound per call.
 */
import { Queue } from 'bullmq';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { Alert } from '../../audit-worker/anomaly/alert-store.js';
import { AUDIT_JOB, AUDIT_JOB_OPTIONS, AUDIT_QUEUE } from '../../common/audit-queue.js';
import { RedisKeys } from '../../common/redis-keys.js';
import type { SecurityEvent } from '../../common/security-event.js';
import { auditEvent } from '../helpers/audit-events.js';
import { callFrom as callFromAddress } from '../helpers/call-from.js';
import { eventually, freePort } from '../helpers/net.js';
import { PG_URL } from '../helpers/postgres.js';
import { ProductProcess, runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';


export function anomalyConfig(rule: string, allowList = '[]') {
  return (upstream: string) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required }
anomaly:
  rules:
    auth_failure_burst: ${rule}
  allow_list: { ips: ${allowList} }
  ban: { factor: 4, max_ttl: 60 }
`;
}

/** GET `path` on the gateway from the local address `from` (any 127.0.0.x reaches the loopback). */
export function callFrom(stack: RunningStack, from: string, path: string, token?: string): Promise<{ status: number; reason?: string }> {
  return callFromAddress(stack.gatewayUrl + path, from, token);
}

export async function alertsOf(stack: RunningStack, query: Record<string, string>): Promise<Alert[]> {
  const res = await fetch(`${stack.auditUrl}/v1/alerts?${new URLSearchParams(query)}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
  expect(res.status).to.equal(200);
  return ((await res.json()) as { alerts: Alert[] }).alerts;
}

/** `n` refused tokens (one forged, one missing, alternately) from `ip`, each answered 401. */
export async function refusedTokens(stack: RunningStack, ip: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await callFrom(stack, ip, '/users', i % 2 === 0 ? 'forged.token.value' : undefined);
    expect(res.status, `refused token ${i + 1} from ${ip}`).to.equal(401);
  }
}

describe('anomaly alerts (running stack)', function () {
  this.timeout(90_000);
  let stack: RunningStack;
  let redis: Redis;
  let keys: RedisKeys;

  before(async () => {
    stack = await RunningStack.start(anomalyConfig('{ threshold: 30, window: 60, ban_ttl: 2 }', '[127.0.0.50/32]'));
    redis = new Redis(stack.redis.url);
    keys = new RedisKeys(stack.env.REDIS_PREFIX!);
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('30 refused tokens from one ip: one alert, a ban within 2 s (valid token refused 403 banned), other ips unaffected; a repeat offence after expiry is banned longer', async () => {
    const ip = '127.0.0.10';
    const valid = stack.token();
    expect((await callFrom(stack, ip, '/users', valid)).status).to.equal(200);
    await refusedTokens(stack, ip, 30);
    const crossed = performance.now();
    const banned = await eventually(async () => {
      const res = await callFrom(stack, ip, '/users', valid);
      return res.status === 403 ? res : undefined;
    }, 5_000, 'the ban');
    const banMs = performance.now() - crossed;
    expect(banned.reason).to.equal('banned');
    expect(banMs, `ban took effect after ${banMs.toFixed(0)} ms`).to.be.below(2_000);
    expect((await callFrom(stack, '127.0.0.11', '/users', valid)).status).to.equal(200);

    const [alert, ...more] = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
      return found.length > 0 ? found : undefined;
    }, 10_000, 'the alert');
    expect(more).to.have.length(0);
    expect(alert).to.include({ rule: 'auth_failure_burst', severity: 'medium', subject_kind: 'ip', subject: ip, count: 30, window_s: 60, action: 'ban', shadow: false, allow_listed: false, status: 'open' });
    expect(alert!.sample_event_ids.length).to.be.within(1, 10);
    const audited = await fetch(`${stack.auditUrl}/v1/security-events?${new URLSearchParams({ subject: ip })}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    const [banEvent, ...moreEvents] = ((await audited.json()) as { events: SecurityEvent[] }).events;
    expect(moreEvents).to.have.length(0);
    expect(banEvent).to.include({ kind: 'ban', actor: 'rule:auth_failure_burst', subject_kind: 'ip', alert_id: alert!.id });
    expect(banEvent!.reason).to.include(alert!.id);
    const firstTtl = await redis.ttl(keys.banIp(ip));

    // The 2 s ban expires; the next 30 refused tokens are the second offence: 2 s × 4 = 8 s.
    expect(firstTtl).to.be.within(1, 2);
    await eventually(async () => ((await callFrom(stack, ip, '/users', valid)).status === 200 ? true : undefined), 10_000, 'the ban to expire');
    await refusedTokens(stack, ip, 30);
    await eventually(async () => ((await callFrom(stack, ip, '/users', valid)).status === 403 ? true : undefined), 5_000, 'the second ban');
    expect(await redis.ttl(keys.banIp(ip))).to.be.within(5, 8);
    // The ban is written before the alert: wait for the alert to have the second 30 too.
    const after = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
      return found.some((a) => a.count >= 60) ? found : undefined;
    }, 10_000, 'the alert to count the second offence');
    expect(after, 'the continuing incident keeps its one alert').to.have.length(1);
    expect(after[0]!.id).to.equal(alert!.id);
    expect(after[0]!.count).to.equal(60);
  });

  it('an allow-listed ip raises the alert and is not banned', async () => {
    const ip = '127.0.0.50';
    await refusedTokens(stack, ip, 30);
    const [alert] = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
      return found.length > 0 ? found : undefined;
    }, 10_000, 'the alert');
    expect(alert).to.include({ subject: ip, count: 30, action: 'ban', allow_listed: true, shadow: false, ban_until: null });
    expect((await callFrom(stack, ip, '/users', stack.token())).status).to.equal(200);
    expect(await redis.exists(keys.banIp(ip))).to.equal(0);
  });

  it('29 refused tokens raise nothing', async () => {
    const ip = '127.0.0.12';
    await refusedTokens(stack, ip, 29);
    // Every one of them counted (in the current window, or the previous one at a boundary).
    await eventually(async () => {
      const window = Math.floor(Date.now() / 60_000);
      const counts = await redis.mget(keys.anomalyCounter('auth_failure_burst', `ip:${ip}`, window), keys.anomalyCounter('auth_failure_burst', `ip:${ip}`, window - 1));
      return counts.reduce((sum, c) => sum + Number(c ?? 0), 0) === 29 ? true : undefined;
    }, 10_000, '29 counted events');
    expect(await alertsOf(stack, { subject: ip })).to.have.length(0);
    expect((await callFrom(stack, ip, '/users', stack.token())).status).to.equal(200);
  });

  it('a revoked token used once: a high alert naming its jti and the request', async () => {
    const jti = `jti-${Date.now()}`;
    const token = stack.token({ jti });
    const cli = await stack.admin(['revoke', '--jti', jti]);
    expect(cli.code, cli.stderr).to.equal(0);
    const res = await stack.call('/users', { Authorization: `Bearer ${token}` });
    expect(res.status).to.equal(401);
    const [alert, ...more] = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'revoked_token_use', subject: jti });
      return found.length > 0 ? found : undefined;
    }, 10_000, 'the alert');
    expect(more).to.have.length(0);
    expect(alert).to.include({ rule: 'revoked_token_use', severity: 'high', subject_kind: 'jti', subject: jti, count: 1, action: 'alert' });
    expect(alert!.sample_request_ids).to.deep.equal([res.requestId]);
    const event = await stack.auditEvent(res.requestId);
    expect(alert!.sample_event_ids).to.deep.equal([event.event_id]);
  });

  it('one token from 10 ips: token_many_ips raises a high alert and the token is refused 401 token_revoked; another token of its consumer passes', async () => {
    const jti = `stolen-${Date.now()}`;
    const stolen = stack.token({ sub: 'dave', jti });
    for (let i = 0; i < 10; i++) expect((await callFrom(stack, `127.0.0.${60 + i}`, '/users', stolen)).status, `call from ip ${i + 1}`).to.equal(200);
    const refused = await eventually(async () => {
      const res = await callFrom(stack, '127.0.0.60', '/users', stolen);
      return res.status === 401 ? res : undefined;
    }, 5_000, 'the token revoked');
    expect(refused.reason).to.equal('token_revoked');
    expect((await callFrom(stack, '127.0.0.60', '/users', stack.token({ sub: 'dave' }))).status).to.equal(200);
    const [alert, ...more] = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'token_many_ips', subject: jti });
      return found.length > 0 ? found : undefined;
    }, 10_000, 'the alert');
    expect(more).to.have.length(0);
    expect(alert).to.include({ severity: 'high', subject_kind: 'jti', count: 10, action: 'ban', allow_listed: false });
    // The rule's 1 d ban_ttl, capped by this config's ban.max_ttl of 60 s.
    expect(Date.parse(alert!.ban_until!) - Date.now()).to.be.within(45_000, 60_000);
  });

  it('the audit CLI lists alerts and acks one; GET /v1/alerts?status= filters on it', async () => {
    const env = { AUDIT_URL: stack.auditUrl, ADMIN_TOKEN: STACK_ADMIN_TOKEN };
    const listed = await runCli('cli/audit.js', ['alerts', '--open', '--rule', 'revoked_token_use', '--json'], env);
    expect(listed.code, listed.stderr).to.equal(0);
    const [alert] = JSON.parse(listed.stdout) as Alert[];
    expect(alert).to.include({ rule: 'revoked_token_use', status: 'open' });
    const acked = await runCli('cli/audit.js', ['ack', alert!.id], env);
    expect(acked.code, acked.stderr).to.equal(0);
    expect(acked.stdout).to.match(new RegExp(`^acked alert ${alert!.id}`));
    expect((await alertsOf(stack, { status: 'acked', rule: 'revoked_token_use' })).map((a) => a.id)).to.deep.equal([alert!.id]);
    expect((await alertsOf(stack, { status: 'open', rule: 'revoked_token_use' })).map((a) => a.id)).to.not.include(alert!.id);
    const table = await runCli('cli/audit.js', ['alerts', '--since', '1h'], env);
    expect(table.code, table.stderr).to.equal(0);
    expect(table.stdout).to.match(/^ID +STATUS +SEVERITY +RULE/);
    expect(table.stdout).to.include(alert!.id);
    const unknown = await runCli('cli/audit.js', ['ack', '00000000-0000-4000-8000-000000000000'], env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.include('404');
  });

  it('two workers on one stream, every job delivered twice: exactly one alert counting each event once, one ban', async () => {
    const port = await freePort();
    const second = await ProductProcess.start(
      'audit-worker-2',
      'audit-worker/main.js',
      { ...stack.env, LOG_LEVEL: 'debug', AUDIT_PORT: String(port), AUDIT_DB_URL: PG_URL, AUDIT_DB_SCHEMA: stack.schema },
      port,
    );
    const queue = new Queue(AUDIT_QUEUE, { connection: { url: stack.redis.url }, prefix: keys.queuePrefix });
    try {
      const ip = '127.0.0.30';
      const events = Array.from({ length: 30 }, () => auditEvent({ reason: 'token_invalid', detail: 'bad_signature', client_ip: ip, sub: null, consumer: null, jti: null, rate_limit: null }));
      const jobs = [...events, ...events].map((event) => ({ name: AUDIT_JOB, data: { v: 1, events: [event] }, opts: AUDIT_JOB_OPTIONS }));
      const added = await queue.addBulk(jobs);
      await eventually(async () => {
        const states = await Promise.all(added.map((job) => job.getState()));
        return states.every((state) => state === 'completed') ? true : undefined;
      }, 20_000, 'the 60 jobs completed');
      const alerts = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
      expect(alerts).to.have.length(1);
      expect(alerts[0]).to.include({ count: 30, action: 'ban' });
      expect(await redis.get(keys.banOffences(`ip:${ip}`))).to.equal('1');
      expect((await callFrom(stack, ip, '/users', stack.token())).reason).to.equal('banned');
      const logs = (second.output.join('') + stack.process('audit-worker').output.join('')).split('\n');
      expect(logs.filter((line) => line.includes('"code":"anomaly_alert"') && line.includes(ip))).to.have.length(1);
      const storedBySecond = second.output.join('').split('\n').filter((line) => line.includes('audit batch stored')).length;
      expect(storedBySecond, 'the second worker took part of the jobs').to.be.within(1, 59);
    } finally {
      await queue.close();
      await second.kill();
    }
  });

  it('GET /v1/alerts refuses a bad filter with 400 naming it', async () => {
    const res = await fetch(`${stack.auditUrl}/v1/alerts?status=closed`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { error: string }).error).to.match(/^status:/);
    const ack = await fetch(`${stack.auditUrl}/v1/alerts/not-a-uuid/ack`, { method: 'POST', headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    expect(ack.status).to.equal(400);
    const anonymous = await fetch(`${stack.auditUrl}/v1/alerts`);
    expect(anonymous.status).to.equal(401);
  });
});

describe('anomaly alerts in shadow mode (running stack)', function () {
  this.timeout(90_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(anomalyConfig('{ threshold: 30, window: 60, ban_ttl: 60, shadow: true }'));
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('raises the alert marked shadow, with the action it would have taken, and bans nothing', async () => {
    const ip = '127.0.0.20';
    await refusedTokens(stack, ip, 30);
    const [alert] = await eventually(async () => {
      const found = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
      return found.length > 0 ? found : undefined;
    }, 10_000, 'the alert');
    expect(alert).to.include({ subject: ip, count: 30, action: 'ban', shadow: true, ban_until: null });
    expect((await callFrom(stack, ip, '/users', stack.token())).status).to.equal(200);
  });
});
