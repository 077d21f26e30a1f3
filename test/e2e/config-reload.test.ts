/**
 * Config reload through the built processes: a changed file (a route's limit, an ACL, a new
 * route) is applied by every process within 2 s, shown as the same hash on each /readyz as
 * `npm run config:check` prints; a broken file is refused with its key's path while the old config
 * keeps serving; a key a process reads only at start is refused by that process alone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

const config = (upstream: string, o: { adminGroup: string; limit: number; extra?: string; deadline?: number }) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: admin, paths: [/admin], upstream: "${upstream}", acl: { allow: [${o.adminGroup}] } }
  - { name: limited, paths: [/limited], upstream: "${upstream}", rate_limit: { by: consumer, hour: ${o.limit} } }
${o.extra ?? ''}
gateway: { check_deadline_ms: ${o.deadline ?? 1000} }
`;

describe('config reload', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let file: string;
  let upstream: string;

  before(async () => {
    stack = await RunningStack.start((url) => {
      upstream = url;
      return config(url, { adminGroup: 'admins', limit: 2 });
    });
    file = stack.env.GATEWAY_CONFIG!;
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const hashes = async (): Promise<string[]> =>
    Promise.all(Object.values(stack.statusUrl).map(async (url) => ((await (await fetch(`${url}/readyz`)).json()) as { config_hash: string }).config_hash));
  const checkedHash = async (): Promise<string> => {
    const { code, stdout } = await runCli('scripts/config-check.js', [file], stack.env);
    expect(code, stdout).to.equal(0);
    return /config hash ([0-9a-f]{16})/.exec(stdout)![1]!;
  };

  it('applies a new limit, ACL and route on every process within 2 s, each showing the hash config:check prints', async () => {
    const staff = { Authorization: `Bearer ${stack.token({ sub: 'reloader', groups: ['staff'] })}` };
    expect((await stack.call('/admin/x', staff)).status).to.equal(403);
    expect([(await stack.call('/limited', staff)).status, (await stack.call('/limited', staff)).status, (await stack.call('/limited', staff)).status]).to.deep.equal([200, 200, 429]);
    const before = await hashes();
    expect(new Set(before).size).to.equal(1);
    expect(before[0]).to.equal(await checkedHash());

    writeFileSync(file, config(upstream, { adminGroup: 'staff', limit: 5, extra: `  - { name: fresh, paths: [/fresh], upstream: "${upstream}" }` }));
    const written = performance.now();
    const expected = await checkedHash();
    expect(expected).to.not.equal(before[0]);
    await eventually(async () => ((await hashes()).every((h) => h === expected) ? true : undefined), 5_000, 'every process on the new hash');
    expect(performance.now() - written).to.be.below(2_000);
    expect((await stack.call('/admin/x', staff)).status).to.equal(200);
    expect((await stack.call('/fresh/1', staff)).status).to.equal(200);
    // The same counter, a higher limit: 2 spent and 1 refused (not counted) before, 3 more now.
    const now = [];
    for (let i = 0; i < 4; i++) now.push((await stack.call('/limited', staff)).status);
    expect(now).to.deep.equal([200, 200, 200, 429]);
  });

  it('refuses a broken file on every process, naming the key, and keeps serving the old config', async () => {
    const before = await hashes();
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('hour: 5', 'hour: -1'));
    for (const name of ['gateway', 'auth-sidecar', 'audit-worker']) {
      await eventually(async () => (stack.process(name).output.join('').includes('routes.1.rate_limit.hour') ? true : undefined), 5_000, `${name} to log the refusal`);
    }
    expect(stack.process('gateway').output.join('')).to.include('config_refused');
    expect(await hashes()).to.deep.equal(before);
    expect((await stack.call('/fresh/1', { Authorization: `Bearer ${stack.token({ sub: 'x', groups: ['staff'] })}` })).status).to.equal(200);
    writeFileSync(file, good);
  });

  it('a key the gateway reads only at start is refused by the gateway alone (restart needed), taken by the others', async () => {
    const before = await hashes();
    writeFileSync(file, config(upstream, { adminGroup: 'staff', limit: 5, extra: `  - { name: fresh, paths: [/fresh], upstream: "${upstream}" }`, deadline: 900 }));
    const expected = await checkedHash();
    await eventually(async () => {
      const [gateway, sidecar, worker] = await hashes();
      return gateway === before[0] && sidecar === expected && worker === expected ? true : undefined;
    }, 5_000, 'the sidecar and worker on the new hash, the gateway on the old');
    await eventually(async () => (stack.process('gateway').output.join('').includes('config_needs_restart') ? true : undefined), 5_000, 'the gateway to say a restart is needed');
    expect(stack.process('gateway').output.join('')).to.include('gateway.check_deadline_ms');
  });
});
