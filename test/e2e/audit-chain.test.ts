/**
 * The hash chain through the running stack: requests through the gateway are stored, sealed by
 * the worker's sealer on its own schedule, and verified intact by the CLI; an edit in SQL is then
 * reported as a broken link, and the head hash the worker logged is the one verify ends on.
 */
import { expect } from 'chai';
import pg from 'pg';
import type { VerifyReport } from '../../audit-worker/chain/verifier.js';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('the audit hash chain against the running stack', function () {
  this.timeout(90_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: optional }
`,
      {},
      { workerEnv: { LOG_LEVEL: 'info' } },
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const audit = (...args: string[]) => runCli('cli/audit.js', args, { ...stack.env, AUDIT_URL: stack.auditUrl, ADMIN_TOKEN: STACK_ADMIN_TOKEN });

  async function verify(query = ''): Promise<{ status: number; body: VerifyReport & { error?: string } }> {
    const res = await fetch(`${stack.auditUrl}/v1/verify${query}`, { headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    return { status: res.status, body: (await res.json()) as VerifyReport & { error?: string } };
  }

  it('seals the requests it stored and verifies them intact, then reports a row edited in SQL', async () => {
    const calls = [];
    for (let i = 0; i < 8; i++) calls.push(await stack.call('/users', { Authorization: `Bearer ${stack.token()}` }));
    calls.push(await stack.call('/users', { Authorization: 'Bearer not-a-token' }));
    for (const call of calls) await stack.auditEvent(call.requestId);

    // The sealer runs every 5 s and seals 10 s buckets 2 s after they close. Every admin API call
    // (these polls too) is itself stored as an admin_query security event, so some are always
    // waiting for their bucket to close: wait for the requests.
    const sealed = await eventually(async () => {
      const { body } = await verify();
      return body.status === 'intact' && body.events_verified === calls.length ? body : undefined;
    }, 40_000, 'every stored request sealed');

    const cli = await audit('verify');
    expect(cli.code, cli.stderr).to.equal(0);
    expect(cli.stdout).to.match(new RegExp(`^intact: ${calls.length} events and \\d+ security events in \\d+ links verified from \\S+ to \\S+; not yet sealed: \\d+; head #\\d+ [0-9a-f]{64}\\n$`));
    // The head is published in the worker's log (the anchor to compare a later verify with).
    const logged = stack.process('audit-worker').output.join('');
    expect(logged).to.include(`"head_hash":"${sealed.head!.hash}"`);
    // /healthz (open, no token) shows the chain keeping up.
    const health = (await (await fetch(`${stack.auditUrl}/healthz`)).json()) as { chain: { head_lag_s: number; lagging: boolean; failed_runs: number } };
    expect(health.chain).to.include({ lagging: false, failed_runs: 0 });
    expect(health.chain.head_lag_s).to.be.within(0, 17);

    const anchored = await audit('verify', '--anchor', `${sealed.head!.seq}:${sealed.head!.hash}`);
    expect(anchored.code, anchored.stderr).to.equal(0);

    const client = new pg.Client({ connectionString: stack.pgUrl });
    await client.connect();
    try {
      await client.query(`UPDATE "${stack.schema}".audit_events SET status = 200 WHERE request_id = $1`, [calls.at(-1)!.requestId]);
    } finally {
      await client.end();
    }
    const broken = await audit('verify', '--json');
    expect(broken.code, broken.stderr).to.equal(3);
    const report = JSON.parse(broken.stdout) as VerifyReport;
    expect(report.status).to.equal('broken');
    expect(report.broken).to.include({ what: 'digest_mismatch', table: 'audit_events' });
    expect(report.message).to.match(/^broken at link #\d+ \[/);
  });

  it('answers a bad since or anchor with 400 naming it, and the CLI with exit 2', async () => {
    const { status, body } = await verify('?since=yesterday');
    expect(status).to.equal(400);
    expect(body.error).to.match(/^since: /);
    expect((await verify('?until=1h')).body.error).to.equal('unknown parameter: until');
    expect((await verify('?anchor=12:abc')).body.error).to.match(/^anchor: must be SEQ:HASH/);
    const cli = await audit('verify', '--since', 'yesterday');
    expect(cli.code).to.equal(2);
    expect(cli.stderr).to.match(/^audit: the audit API answered 400: since: /);
  });
});
