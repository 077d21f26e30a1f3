/**
 * The investigation commands through the built gateway, sidecar and worker: a token revoked with
 * the admin CLI, refused after, then (Redis frozen, a fail_open route) let through once; `audit
 * after-revocation` and `audit trace` tell it, and each query of the API is itself audited.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { apiTokenActor } from '../../audit-worker/investigation/admin-query-audit.js';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('investigation commands against the running stack', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let env: Record<string, string>;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", rate_limit: { by: consumer } }
  - { name: open, paths: [/open], upstream: "${upstream}", rate_limit: { by: consumer, fail_open: true } }
gateway: { check_deadline_ms: 1000 }
`,
    );
    env = { AUDIT_URL: stack.auditUrl, ADMIN_TOKEN: STACK_ADMIN_TOKEN };
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const audit = async (...args: string[]) => {
    const cli = await runCli('cli/audit.js', args, env);
    expect(cli.code, cli.stderr).to.equal(0);
    return cli.stdout;
  };

  it('says no request got through after a revocation the gateway enforced, and traces one of them', async () => {
    const jti = randomUUID();
    const bearer = { Authorization: `Bearer ${stack.token({ sub: 'erin', jti })}` };
    const before = [await stack.call('/users', bearer), await stack.call('/users', bearer)];
    expect(before.map((r) => r.status)).to.deep.equal([200, 200]);
    const revoked = await stack.admin(['revoke', '--jti', jti, '--reason', 'leaked in a ticket']);
    expect(revoked.code, revoked.stderr).to.equal(0);
    const after = [await stack.call('/users', bearer), await stack.call('/users', bearer), await stack.call('/users', bearer)];
    expect(after.map((r) => r.status)).to.deep.equal([401, 401, 401]);

    // The revocation travels through the queue like the requests: wait until both are stored.
    const answer = await eventually(async () => {
      const cli = await runCli('cli/audit.js', ['after-revocation', '--jti', jti, '--json'], env);
      const body = JSON.parse(cli.stdout) as { requests: number; allowed: number; summary: string };
      return body.requests === 3 ? body : undefined;
    }, 20_000, 'the three refused requests after the revocation');
    expect(answer.allowed).to.equal(0);
    expect(answer.summary).to.match(/^0 of 3 requests after the revocation at \S+Z were allowed$/);
    expect((await audit('after-revocation', '--jti', jti)).split('\n')[0]).to.equal(answer.summary);

    const trace = JSON.parse(await audit('trace', after[0]!.requestId, '--json')) as {
      event: { request_id: string; reason: string };
      security_events: { kind: string; subject: string; actor: string; reason: string }[];
      same_token: { request_id: string }[];
    };
    expect(trace.event).to.include({ request_id: after[0]!.requestId, reason: 'token_revoked' });
    expect(trace.security_events.filter((e) => e.subject === jti)).to.have.length(1);
    expect(trace.security_events.find((e) => e.subject === jti)).to.include({ kind: 'revoke', reason: 'leaked in a ticket' });
    expect(trace.same_token.map((e) => e.request_id)).to.have.members([...before, after[1]!, after[2]!].map((r) => r.requestId));
    const table = await audit('trace', after[0]!.requestId);
    expect(table).to.include(`REQUEST ${after[0]!.requestId}`).and.to.include('SAME TOKEN WITHIN ±10 MINUTES');
  });

  it('says so when a revoked token got through a fail_open route while Redis was frozen', async () => {
    const jti = randomUUID();
    const bearer = { Authorization: `Bearer ${stack.token({ sub: 'frank', jti })}` };
    const revoked = await stack.admin(['revoke', '--jti', jti]);
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect((await stack.call('/open', bearer)).status).to.equal(401);
    stack.redis.pause();
    let through;
    try {
      through = await stack.call('/open', bearer);
    } finally {
      stack.redis.unpause();
    }
    expect(through.status).to.equal(200);
    const refusedAgain = await eventually(async () => {
      const res = await stack.call('/open', bearer);
      return res.status === 401 ? res : undefined;
    }, 10_000, 'the revocation enforced again after the thaw');
    await stack.auditEvent(refusedAgain.requestId);

    const answer = await eventually(async () => {
      const cli = await runCli('cli/audit.js', ['after-revocation', '--jti', jti, '--json'], env);
      const body = JSON.parse(cli.stdout) as { requests: number; allowed: number; allowed_fail_open: number; summary: string; events: { request_id: string; fail_open: boolean }[] };
      return body.allowed === 1 && body.events.some((e) => e.request_id === refusedAgain.requestId) ? body : undefined;
    }, 20_000, 'the request let through, stored');
    expect(answer.allowed_fail_open).to.equal(1);
    expect(answer.summary).to.match(new RegExp(`^1 of ${answer.requests} requests after the revocation at \\S+Z was allowed \\(1 by fail_open while Redis was unreachable\\)$`));
    expect(answer.events.find((e) => e.request_id === through.requestId)).to.include({ fail_open: true });
  });

  it('draws a timeline, ranks the top subjects, exports JSON lines and refuses bad flags with exit 2', async () => {
    const jti = randomUUID();
    const sub = `gina-${jti.slice(0, 8)}`;
    const bearer = { Authorization: `Bearer ${stack.token({ sub, jti })}` };
    const calls = [await stack.call('/users', bearer), await stack.call('/users', { Authorization: 'Bearer not-a-token' })];
    await stack.auditEvent(calls[0]!.requestId);
    await stack.auditEvent(calls[1]!.requestId);

    const timeline = await audit('timeline', '--jti', jti, '--since', '5m', '--bucket', '1m');
    const lines = timeline.trimEnd().split('\n');
    expect(lines[1]).to.equal('█ deny  ░ allow');
    expect(lines.slice(2)).to.have.length.within(5, 6);
    expect(lines.filter((l) => l.includes('░')).join('')).to.match(/ 1 allow +0 deny/);

    const top = JSON.parse(await audit('top', '--by', 'reason', '--decision', 'deny', '--since', '5m', '--limit', '50', '--json')) as { rows: { value: string; deny: number }[] };
    expect(top.rows.map((r) => r.value)).to.include('token_invalid');

    const exported = (await audit('export', '--since', '5m', '--kind', 'request')).trimEnd().split('\n').map((l) => JSON.parse(l) as { source: string; request_id: string });
    expect(exported.map((e) => e.request_id)).to.include.members(calls.map((c) => c.requestId));
    expect(new Set(exported.map((e) => e.source))).to.deep.equal(new Set(['request']));

    const bad = await runCli('cli/audit.js', ['timeline', '--since', '5m', '--bucket', '1w'], env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('bucket: must be a duration from 1s to 366d');
    const missing = await runCli('cli/audit.js', ['top', '--since', '5m'], env);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.include('top needs --by').and.to.include('usage:');
  });

  it('audits each query of the API as an admin_query security event, naming a hash of the token', async () => {
    const marker = randomUUID();
    await audit('events', '--sub', marker);
    const listed = JSON.parse(await audit('security', '--kind', 'admin_query', '--actor', apiTokenActor(STACK_ADMIN_TOKEN), '--json')) as { subject: string; reason: string }[];
    expect(listed.find((e) => e.reason.includes(marker))).to.include({ subject: 'GET /v1/events' });
    expect(JSON.stringify(listed)).not.to.include(STACK_ADMIN_TOKEN);
  });
});
