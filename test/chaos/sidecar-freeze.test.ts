/**
 * A frozen sidecar must not count, once it runs again, the checks the gateway already answered
 * 503: they waited in its socket buffer while it was stopped, and are stale when it reads them.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { recordCase } from './report.js';

const PER_DAY = 5;

describe('a frozen sidecar, thawed', function () {
  this.timeout(60_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: limited, paths: [/limited], upstream: "${upstream}", rate_limit: { by: consumer, day: ${PER_DAY} } }
`,
    );
  });

  after(async () => {
    const sidecar = stack?.process('auth-sidecar');
    if (sidecar?.running) sidecar.signal('SIGCONT');
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  it(`counts none of the checks answered 503 while it was frozen: the consumer keeps its ${PER_DAY} a day`, async () => {
    const auth = { Authorization: `Bearer ${stack.token({ sub: `frozen-${randomUUID()}` })}` };
    const sidecar = stack.process('auth-sidecar');
    // Traffic flowed before the freeze (the stream has seen batches that did not wait).
    for (let i = 0; i < 3; i++) expect((await stack.call('/limited/x', { Authorization: `Bearer ${stack.token({ sub: `warm-${randomUUID()}` })}` })).status).to.equal(200);
    sidecar.signal('SIGSTOP');
    const whileFrozen = await Promise.all(Array.from({ length: 8 }, () => stack.call('/limited/x', auth).then((r) => r.status)));
    sidecar.signal('SIGCONT');
    // Back once a check is answered again (a fresh consumer, so nothing of the other one is spent).
    await eventually(async () => ((await stack.call('/limited/x', { Authorization: `Bearer ${stack.token({ sub: `probe-${randomUUID()}` })}` })).status === 200 ? true : undefined), 10_000, 'the sidecar answering');
    const after: number[] = [];
    for (let i = 0; i < PER_DAY + 1; i++) after.push((await stack.call('/limited/x', auth)).status);
    const expected = [...Array<number>(PER_DAY).fill(200), 429];
    const pass = recordCase({
      kind: 'fault',
      name: 'sidecar frozen with checks in its socket buffer, then thawed',
      expected: `8 x 503 while frozen; then ${PER_DAY} x 200, 429 (nothing stale counted)`,
      observed: `${whileFrozen.join(',')}; then ${after.join(',')}`,
      pass: whileFrozen.every((s) => s === 503) && after.join() === expected.join(),
    });
    expect(pass, `while frozen ${whileFrozen.join(',')}, after ${after.join(',')}`).to.equal(true);
  });
});
