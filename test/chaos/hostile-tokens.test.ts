/**
 * Hostile tokens through the built gateway, sidecar and worker: tokens that verify but must not
 * open an API (unknown critical extensions, issued in the future, living too long, not access
 * tokens) and requests carrying more than one Authorization header. Each case records a row of
 * the chaos table (401 token_invalid with its audit detail), then asserts on it; a few tokens
 * that must still pass are checked alongside, so the refusals are not a blanket one.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { expect } from 'chai';
import type jwt from 'jsonwebtoken';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { recordCase } from './report.js';

interface Answer {
  status: number;
  reason: string;
  requestId: string;
}

describe('hostile tokens through the gateway', function () {
  this.timeout(60_000);
  let stack: RunningStack;
  const now = (): number => Math.floor(Date.now() / 1000);

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}" }
  - { name: public, paths: [/public], upstream: "${upstream}", auth: none }
gateway: { check_deadline_ms: 1000 }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  /** GET `path` with these Authorization header fields, each sent as a header line of its own. */
  function callWith(authorizations: string[], path = '/users/1'): Promise<Answer> {
    const requestId = `ht-${randomUUID()}`;
    const url = new URL(path, stack.gatewayUrl);
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { 'X-Request-Id': requestId, ...(authorizations.length ? { Authorization: authorizations } : {}) } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          let reason = '-';
          try {
            reason = (JSON.parse(body) as { reason?: string }).reason ?? '-';
          } catch {
            // an upstream answer is not JSON of ours
          }
          resolve({ status: res.statusCode ?? 0, reason, requestId });
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Sends the request, records the row `<status> <reason>/<detail>` and asserts it passed. */
  async function expectRefused(name: string, detail: string, authorizations: string[]): Promise<void> {
    const answer = await callWith(authorizations);
    const event = await stack.auditEvent(answer.requestId);
    const expected = `401 token_invalid/${detail}`;
    const observed = `${answer.status} ${answer.reason}/${event.detail ?? '-'}`;
    const pass = recordCase({ kind: 'hostile input', name, expected, observed, pass: observed === expected });
    expect(observed, name).to.equal(expected);
    expect(pass).to.equal(true);
  }

  async function expectAllowed(authorization: string): Promise<void> {
    const answer = await callWith([authorization]);
    expect(answer.status).to.equal(200);
  }

  const bearer = (claims: Record<string, unknown> = {}, options: jwt.SignOptions = {}): string => `Bearer ${stack.token(claims, options)}`;
  const withHeader = (header: Record<string, unknown>): jwt.SignOptions => ({ header: { alg: 'HS256', ...header } });

  describe('crit header (RFC 7515 §4.1.11: no extension is understood)', () => {
    it('refuses a token whose crit names an extension', async () => {
      await expectRefused('crit header ["b64"]', 'crit_unsupported', [bearer({}, withHeader({ crit: ['b64'], b64: true }))]);
    });

    it('refuses a token whose crit names a registered claim', async () => {
      await expectRefused('crit header ["exp"]', 'crit_unsupported', [bearer({}, withHeader({ crit: ['exp'] }))]);
    });
  });

  describe('issue time and lifetime', () => {
    it('refuses a token issued an hour in the future', async () => {
      await expectRefused('iat 1 h in the future', 'iat_future', [bearer({ iat: now() + 3600 })]);
    });

    it('refuses a token living 30 days (default max_lifetime 24h)', async () => {
      await expectRefused('exp - iat = 30 d', 'lifetime_too_long', [bearer({}, { expiresIn: '30d' })]);
    });

    it('refuses a token without iat whose exp is 30 days away', async () => {
      await expectRefused('no iat, exp 30 d away', 'lifetime_too_long', [bearer({}, { expiresIn: '30d', noTimestamp: true })]);
    });

    it('accepts a token living exactly 24 hours, and one issued within the clock skew', async () => {
      await expectAllowed(bearer({}, { expiresIn: '24h' }));
      await expectAllowed(bearer({ iat: now() + 10 }));
    });
  });

  describe('token type', () => {
    it('refuses a typ header that is not JWT or at+jwt', async () => {
      await expectRefused('typ header secevent+jwt', 'wrong_type', [bearer({}, withHeader({ typ: 'secevent+jwt' }))]);
    });

    it('refuses a refresh token (token_use: refresh)', async () => {
      await expectRefused('claim token_use: refresh', 'wrong_type', [bearer({ token_use: 'refresh' })]);
    });

    it('refuses a Keycloak refresh token (typ claim: Refresh)', async () => {
      await expectRefused('claim typ: Refresh', 'wrong_type', [bearer({ typ: 'Refresh' })]);
    });

    it('refuses an ID token (token_use: id)', async () => {
      await expectRefused('claim token_use: id', 'wrong_type', [bearer({ token_use: 'id' })]);
    });

    it('refuses token_type: refresh_token', async () => {
      await expectRefused('claim token_type: refresh_token', 'wrong_type', [bearer({ token_type: 'refresh_token' })]);
    });

    it('accepts access tokens as the usual issuers mark them', async () => {
      await expectAllowed(bearer({}, withHeader({ typ: 'at+jwt' })));
      await expectAllowed(bearer({}, withHeader({ typ: 'application/AT+JWT' })));
      await expectAllowed(bearer({ token_use: 'access' }));
      await expectAllowed(bearer({ typ: 'Bearer' }));
    });
  });

  describe('more than one token', () => {
    it('refuses two Authorization headers (Node keeps only the first)', async () => {
      await expectRefused('two Authorization headers', 'multiple_tokens', [bearer({ sub: 'alice' }), bearer({ sub: 'mallory' })]);
    });

    it('refuses two Authorization headers even when the second is not a token', async () => {
      await expectRefused('Authorization twice, second garbage', 'multiple_tokens', [bearer(), 'Basic Zm9vOmJhcg==']);
    });

    it('still accepts one Authorization header', async () => {
      await expectAllowed(bearer());
    });

    it('lets two Authorization headers through on an auth: none route, where no token is read', async () => {
      expect((await callWith([bearer(), bearer()], '/public/1')).status).to.equal(200);
    });
  });
});
