/**
 * An issuer whose keys come from a JWKS URL, through the real gateway and sidecar: a token
 * signed by a published key passes, an unknown kid is 401, and while the JWKS has never answered
 * the gateway says 503, not 401 (rotation itself: test/integration/jwks.test.ts).
 */
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { JwksServer, jwksPair } from '../helpers/jwks-server.js';
import { eventually } from '../helpers/net.js';
import { RunningStack } from '../helpers/running-stack.js';

describe('JWKS issuer (running stack)', function () {
  this.timeout(60_000);
  let jwks: JwksServer;
  let stack: RunningStack;

  before(async () => {
    jwks = await JwksServer.start();
    jwks.published = { status: 503, keys: [] };
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - { name: idp, iss: idp, algorithms: [ES256], jwks_url: "${jwks.url}", jwks: { unknown_kid_interval_seconds: 1 } }
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required }
`,
    );
  });
  after(async () => {
    await stack?.stop();
    await jwks?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const call = (key: ReturnType<typeof jwksPair>) =>
    stack.call('/users/1', { Authorization: `Bearer ${jwt.sign({ iss: 'idp', sub: 'ada' }, key.privateKey, { algorithm: 'ES256', keyid: key.kid, expiresIn: 300 })}` });

  it('503 while the JWKS has never answered, then 200 for a published key and 401 for an unknown kid', async () => {
    const k1 = jwksPair('k1');
    const unavailable = await call(k1);
    expect(unavailable.status).to.equal(503);
    expect(await stack.auditEvent(unavailable.requestId)).to.include({ reason: 'auth_unavailable', detail: 'jwks_unavailable' });

    jwks.published = { status: 200, keys: [k1.jwk] };
    // Answered 200 once a fetch has run: at most 1 s after the last (unknown_kid_interval_seconds).
    await eventually(async () => ((await call(k1)).status === 200 ? true : undefined), 10_000, 'a token of the published key to pass');
    const stranger = await call(jwksPair('k3'));
    expect(stranger.status).to.equal(401);
    expect(await stack.auditEvent(stranger.requestId)).to.include({ reason: 'token_invalid', detail: 'kid_unknown' });
  });
});
