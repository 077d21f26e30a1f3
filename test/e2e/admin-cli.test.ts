/**
 * The admin CLI, run as a child process against the stack's Redis, checked through the built
 * gateway and sidecar: what it bans and revokes is what the sidecar refuses, no more, no less.
 */
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('the admin CLI against the running stack', function () {
  this.timeout(60_000);
  let stack: RunningStack;
  /** The gateway reached over IPv6 loopback: its peer address is ::1. */
  let ipv6Url: string;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: optional }
`,
      { GATEWAY_HOST: '::' },
    );
    ipv6Url = stack.gatewayUrl.replace('127.0.0.1', '[::1]');
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  async function admin(...args: string[]): Promise<string> {
    const cli = await stack.admin(args);
    expect(cli.code, cli.stderr).to.equal(0);
    return cli.stdout;
  }

  describe('ban --ip', () => {
    it('bans an IPv6 peer written in another form (upper case, zeros spelled out)', async () => {
      expect((await stack.call('/users', {}, ipv6Url)).status).to.equal(200);
      await admin('ban', '--ip', '0:0:0:0:0:0:0:1');
      expect((await stack.call('/users', {}, ipv6Url)).status).to.equal(403);
      expect((await stack.call('/users')).status).to.equal(200);
      expect(await admin('unban', '--ip', '0000::0001')).to.match(/^unbanned ip ::1/);
      expect((await stack.call('/users', {}, ipv6Url)).status).to.equal(200);
    });

    it('bans the IPv4 peer of an IPv4-mapped IPv6 address', async () => {
      expect(await admin('ban', '--ip', '::FFFF:127.0.0.1')).to.match(/^banned ip 127\.0\.0\.1/);
      expect((await stack.call('/users')).status).to.equal(403);
      await admin('unban', '--ip', '::ffff:7f00:1');
      expect((await stack.call('/users')).status).to.equal(200);
    });

    it('refuses an invalid address with exit code 2', async () => {
      for (const ip of ['300.1.1.1', '1.2.3', '2001:db8::1::2', 'localhost']) {
        const cli = await stack.admin(['ban', '--ip', ip]);
        expect(cli.code, ip).to.equal(2);
        expect(cli.stderr).to.include(`--ip ${ip} is not an IPv4 or IPv6 address`);
      }
    });
  });

  describe('token', () => {
    it("refuses a --ttl longer than the issuer's max_lifetime with exit code 2, and mints one that fits", async () => {
      const cli = await stack.admin(['token', '--sub', 'tess', '--ttl', '2d']);
      expect(cli.code, cli.stdout).to.equal(2);
      expect(cli.stderr).to.include("--ttl 2d is longer than issuer e2e's max_lifetime (86400 s)");
      const token = (await admin('token', '--sub', 'tess', '--ttl', '24h')).trim();
      expect((await stack.call('/users', { Authorization: `Bearer ${token}` })).status).to.equal(200);
    });
  });

  describe('--consumer', () => {
    it('refuses a consumer without a configured issuer, naming the issuers', async () => {
      for (const consumer of ['alice', 'nope:alice', 'e2e:']) {
        for (const command of ['ban', 'unban', 'revoke']) {
          const cli = await stack.admin([command, '--consumer', consumer]);
          expect(cli.code, `${command} ${consumer}`).to.equal(2);
          expect(cli.stderr).to.include(`--consumer ${consumer} must be <issuer>:<sub> with a configured issuer (e2e)`);
        }
      }
    });

    it('bans a consumer given as <issuer>:<sub>', async () => {
      const auth = { Authorization: `Bearer ${stack.token({ sub: 'mallory' })}` };
      await admin('ban', '--consumer', 'e2e:mallory');
      expect((await stack.call('/users', auth)).status).to.equal(403);
      await admin('unban', '--consumer', 'e2e:mallory');
      expect((await stack.call('/users', auth)).status).to.equal(200);
    });
  });

  it('revoke --consumer revokes the tokens issued before it, not those issued after it returned', async () => {
    // Start at the beginning of a second: the CLI then returns within the second it revoked in.
    await eventually(() => (Date.now() % 1000 < 50 ? true : undefined), 5_000, 'the start of a second');
    const before = stack.token({ sub: 'rita' });
    await admin('revoke', '--consumer', 'e2e:rita');
    const after = stack.token({ sub: 'rita' });
    expect((await stack.call('/users', { Authorization: `Bearer ${before}` })).status).to.equal(401);
    expect((await stack.call('/users', { Authorization: `Bearer ${after}` })).status).to.equal(200);
    expect((jwt.decode(after) as jwt.JwtPayload).iat).to.be.greaterThan((jwt.decode(before) as jwt.JwtPayload).iat!);
  });
});
