/**
 * `npm run admin -- bans list|add|remove` and `revoke` against the running stack: what they
 * write is what the sidecar enforces, `bans list` shows it, and every change reaches the audit
 * store as a security event (through the queue and the worker), readable with the API and
 * `npm run audit -- security`.
 */
import { userInfo } from 'node:os';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import type { SecurityEvent } from '../../common/security-event.js';
import type { ActiveBan } from '../../common/security-state.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { callFrom } from '../helpers/call-from.js';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('bans and their security events (running stack)', function () {
  this.timeout(90_000);
  let stack: RunningStack;
  let redis: Redis;
  let keys: RedisKeys;
  const actor = `admin-cli:${userInfo().username}`;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required }
`,
    );
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

  async function admin(...args: string[]): Promise<string> {
    const cli = await stack.admin(args);
    expect(cli.code, `admin ${args.join(' ')}: ${cli.stderr}`).to.equal(0);
    return cli.stdout;
  }

  const users = () => `${stack.gatewayUrl}/users`;

  /** The stored security events of `subject`, newest first, once there are `count`. */
  async function securityEvents(subject: string, count: number): Promise<SecurityEvent[]> {
    return eventually(async () => {
      const res = await fetch(`${stack.auditUrl}/v1/security-events?${new URLSearchParams({ subject })}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
      expect(res.status).to.equal(200);
      const { events } = (await res.json()) as { events: SecurityEvent[] };
      return events.length >= count ? events : undefined;
    }, 15_000, `${count} security events of ${subject}`);
  }

  it('bans add --ip: that ip gets 403 banned, bans list shows it with reason and until, bans remove lets it pass, and both are stored as security events', async () => {
    const ip = '127.0.0.21';
    const token = stack.token();
    expect((await callFrom(users(), ip, token)).status).to.equal(200);

    const added = Date.now();
    expect(await admin('bans', 'add', '--ip', ip, '--ttl', '1h', '--reason', 'credential stuffing from this host')).to.match(/^banned ip 127\.0\.0\.21 for 3600s \(audited as [0-9a-f-]{36}\)/);
    expect(await callFrom(users(), ip, token)).to.deep.equal({ status: 403, reason: 'banned' });
    expect((await callFrom(users(), '127.0.0.22', token)).status, 'another ip').to.equal(200);

    const listed = JSON.parse(await admin('bans', 'list', '--json')) as ActiveBan[];
    const entry = listed.find((b) => b.kind === 'ip' && b.subject === ip);
    expect(entry).to.include({ reason: 'credential stuffing from this host', by: actor });
    expect(Date.parse(entry!.until!) - added).to.be.within(3590_000, 3600_000 + 10_000);
    const table = await admin('bans', 'list');
    expect(table.split('\n')[0]).to.match(/^KIND\s+SUBJECT\s+REASON\s+BY\s+SINCE\s+UNTIL$/);
    const row = new RegExp(`^ip\\s+127\\.0\\.0\\.21\\s+credential stuffing from this host\\s+${actor}\\s+(\\S+)\\s+(\\S+)$`, 'm').exec(table);
    expect(row, table).not.to.equal(null);
    expect(row![1]).to.equal(entry!.since);
    // until is read from the key's ttl at each listing: the two listings agree within a second.
    expect(Math.abs(Date.parse(row![2]!) - Date.parse(entry!.until!))).to.be.below(1000);

    expect(await admin('bans', 'remove', '--ip', ip, '--reason', 'false positive: office NAT')).to.match(/^unbanned ip 127\.0\.0\.21 \(audited as /);
    expect((await callFrom(users(), ip, token)).status).to.equal(200);
    expect((JSON.parse(await admin('bans', 'list', '--json')) as ActiveBan[]).some((b) => b.subject === ip)).to.equal(false);

    const [unban, ban] = await securityEvents(ip, 2);
    expect(ban).to.include({ kind: 'ban', actor, subject_kind: 'ip', subject: ip, reason: 'credential stuffing from this host', alert_id: null });
    expect(Date.parse(ban!.until!)).to.be.within(Date.parse(entry!.until!) - 10_000, Date.parse(entry!.until!) + 10_000);
    expect(unban).to.include({ kind: 'unban', actor, subject_kind: 'ip', subject: ip, reason: 'false positive: office NAT', until: null, alert_id: null });
    expect(Date.parse(unban!.ts)).to.be.at.least(Date.parse(ban!.ts));

    // The same through the audit CLI, as JSON and as a table.
    const env = { AUDIT_URL: stack.auditUrl, ADMIN_TOKEN: STACK_ADMIN_TOKEN };
    const json = await runCli('cli/audit.js', ['security', '--subject', ip, '--since', '1h', '--json'], env);
    expect(json.code, json.stderr).to.equal(0);
    expect((JSON.parse(json.stdout) as SecurityEvent[]).map((e) => e.event_id)).to.deep.equal([unban!.event_id, ban!.event_id]);
    const shown = await runCli('cli/audit.js', ['security', '--kind', 'unban', '--subject', ip], env);
    expect(shown.code, shown.stderr).to.equal(0);
    expect(shown.stdout).to.match(/^TS\s+KIND\s+SUBJECT\s+ACTOR\s+UNTIL\s+REASON\s+ALERT\n/);
    expect(shown.stdout).to.include(`unban  ip:${ip}`).and.include('false positive: office NAT');
    expect(shown.stdout.trim().split('\n')).to.have.length(2);
  });

  it('bans add --jti: that token gets 401 token_revoked, is listed until lifted, and bans remove restores it', async () => {
    const jti = `jti-${Date.now()}`;
    const token = stack.token({ jti });
    const other = stack.token();
    await admin('bans', 'add', '--jti', jti, '--reason', 'token seen in a public paste');
    expect(await callFrom(users(), '127.0.0.31', token)).to.deep.equal({ status: 401, reason: 'token_revoked' });
    expect((await callFrom(users(), '127.0.0.31', other)).status).to.equal(200);
    const entry = (JSON.parse(await admin('bans', 'list', '--json')) as ActiveBan[]).find((b) => b.kind === 'jti' && b.subject === jti);
    expect(entry).to.include({ reason: 'token seen in a public paste', by: actor, until: null });
    expect(await admin('bans', 'list')).to.match(new RegExp(`^jti\\s+${jti}\\s+token seen in a public paste\\s+.*until lifted$`, 'm'));
    await admin('bans', 'remove', '--jti', jti, '--reason', 'paste was our own test');
    expect((await callFrom(users(), '127.0.0.31', token)).status).to.equal(200);
    const [unban, ban] = await securityEvents(jti, 2);
    expect(ban).to.include({ kind: 'ban', subject_kind: 'jti', until: null });
    expect(unban).to.include({ kind: 'unban', subject_kind: 'jti', reason: 'paste was our own test' });
  });

  it('revoke --token is audited as a revoke of its jti until its exp (the token itself is never stored), and is listed', async () => {
    const jti = `rv-${Date.now()}`;
    const token = stack.token({ jti });
    const exp = (jwt.decode(token) as jwt.JwtPayload).exp!;
    await admin('revoke', '--token', token, '--reason', 'laptop stolen');
    expect(await callFrom(users(), '127.0.0.32', token)).to.deep.equal({ status: 401, reason: 'token_revoked' });
    const [revoke] = await securityEvents(jti, 1);
    expect(revoke).to.include({ kind: 'revoke', actor, subject_kind: 'jti', subject: jti, reason: 'laptop stolen' });
    expect(Date.parse(revoke!.until!) / 1000).to.be.within(exp - 2, exp + 2);
    expect(JSON.stringify(revoke)).not.to.include(token.split('.')[2]!);
    expect((JSON.parse(await admin('bans', 'list', '--json')) as ActiveBan[]).find((b) => b.subject === jti)).to.include({ kind: 'jti', reason: 'laptop stolen' });
  });

  it('refuses bans add and bans remove without --reason (exit 2, usage), writing nothing', async () => {
    const ip = '127.0.0.41';
    const token = stack.token();
    const add = await stack.admin(['bans', 'add', '--ip', ip, '--ttl', '1h']);
    expect(add.code).to.equal(2);
    expect(add.stderr).to.include('admin: bans add needs --reason TEXT (why: it is audited)').and.include('usage: admin <command>');
    expect(await redis.exists(keys.banIp(ip))).to.equal(0);
    expect((await callFrom(users(), ip, token)).status).to.equal(200);

    await admin('ban', '--ip', ip); // the older spelling: reason "manual"
    const remove = await stack.admin(['bans', 'remove', '--ip', ip]);
    expect(remove.code).to.equal(2);
    expect(remove.stderr).to.include('admin: bans remove needs --reason TEXT (why: it is audited)');
    expect(await callFrom(users(), ip, token)).to.deep.equal({ status: 403, reason: 'banned' });
    const tokenReason = await stack.admin(['bans', 'remove', '--ip', ip, '--reason', `see ${token}`]);
    expect(tokenReason.code).to.equal(2);
    expect(tokenReason.stderr).to.include('--reason must not contain a token');
    await admin('unban', '--ip', ip);
    // Only the two changes that happened were audited: the older spellings record reason "manual".
    const events = await securityEvents(ip, 2);
    expect(events.map((e) => `${e.kind}:${e.reason}`)).to.deep.equal(['unban:manual', 'ban:manual']);
  });

  it('says loudly that a ban was NOT AUDITED and exits 1 when publishing fails, the ban staying', async () => {
    // A Redis user that may write ban keys (and announce them) but not the queue's: the write works, the publish is refused.
    const prefix = stack.env.REDIS_PREFIX!;
    await redis.call('ACL', 'SETUSER', 'bans-only', 'on', '>bans-only-pw', `~${prefix}:ban:*`, `~${prefix}:revoked:*`, `&${keys.securityChannel}`, '+@all');
    const ip = '127.0.0.51';
    const url = stack.redis.url.replace('redis://', 'redis://bans-only:bans-only-pw@');
    const cli = await runCli('cli/admin.js', ['bans', 'add', '--ip', ip, '--reason', 'audit outage drill'], { ...stack.env, REDIS_URL: url });
    expect(cli.code, cli.stderr).to.equal(1);
    expect(cli.stderr).to.match(/^admin: banned ip 127\.0\.0\.51 until lifted, but it was NOT AUDITED: publishing security event [0-9a-f-]{36} failed \(.*NOPERM.*\); the change stays in effect/);
    expect(await callFrom(users(), ip, stack.token())).to.deep.equal({ status: 403, reason: 'banned' });
    await admin('bans', 'remove', '--ip', ip, '--reason', 'end of drill');
    const events = await securityEvents(ip, 1);
    expect(events.map((e) => e.kind)).to.deep.equal(['unban']);
  });
});
