/**
 * The client's address behind a balancer, sent the way an attacker would, through the built
 * processes: the gateway trusts 127.0.0.1 as its proxy (gateway.trusted_proxies), so X-Forwarded-For
 * is read from the right and only the first untrusted hop counts; what the client wrote to the
 * left of it, and a Forwarded header the proxies do not set, change nothing. The address is the
 * one audited, banned and sent upstream.
 */
import { expect } from 'chai';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('trusted proxies, through the real processes', function () {
  this.timeout(60_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
gateway: { trusted_proxies: "127.0.0.1, 10.9.0.0/16" }
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: optional }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  it('takes the right-most untrusted hop of X-Forwarded-For, ignoring what the client forged to its left and in Forwarded', async () => {
    // The client forged 6.6.6.6 and a Forwarded header; its real address 203.0.113.9 was appended by a
    // trusted proxy 10.9.0.5, which the last proxy (the TCP peer, 127.0.0.1) appended in turn.
    const call = await stack.call('/users/1', { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9, 10.9.0.5', Forwarded: 'for=7.7.7.7' });
    expect(call.status).to.equal(200);
    expect((await stack.auditEvent(call.requestId)).client_ip).to.equal('203.0.113.9');
    expect(stack.upstream.find(call.requestId)?.headers['x-forwarded-for']).to.equal('203.0.113.9');
  });

  it('stops at a hop that is not an address, keeping the nearest trusted proxy', async () => {
    const call = await stack.call('/users/1', { 'X-Forwarded-For': '203.0.113.9, unknown, 10.9.0.5' });
    expect((await stack.auditEvent(call.requestId)).client_ip).to.equal('10.9.0.5');
  });

  it('bans the forwarded client, not the proxy: others behind the same balancer still pass', async () => {
    const ban = await stack.admin(['bans', 'add', '--ip', '203.0.113.77', '--reason', 'trusted-proxy test']);
    expect(ban.code, ban.stderr).to.equal(0);
    const banned = await stack.call('/users/1', { 'X-Forwarded-For': '203.0.113.77' });
    const other = await stack.call('/users/1', { 'X-Forwarded-For': '203.0.113.78' });
    expect([banned.status, other.status]).to.deep.equal([403, 200]);
    expect(await stack.auditEvent(banned.requestId)).to.include({ reason: 'banned', client_ip: '203.0.113.77' });
  });
});
