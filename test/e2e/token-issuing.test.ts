/**
 * The sidecar as a token authority, through the real gateway, sidecar, worker, Redis and admin
 * CLI: users, login (bcrypt), refresh rotation and reuse, logout, the JWKS, key rotation and
 * `revoke --kid`; and, on a second stack, cookie mode and the endpoints' rate limit.
 */
import { createPublicKey, verify } from 'node:crypto';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

const PASSWORD = 'correct horse battery staple';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  requestId: string;
  ms: number;
}

async function send(stack: RunningStack, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const requestId = `ti-${Math.random().toString(36).slice(2)}`;
  const started = performance.now();
  const res = await fetch(stack.gatewayUrl + path, {
    method,
    headers: { 'X-Request-Id': requestId, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers, requestId, ms: performance.now() - started };
}

const login = (stack: RunningStack, username: string, password = PASSWORD) => send(stack, 'POST', '/auth/login', { username, password });

function headerOf(token: string): Record<string, string> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<string, string>;
}

async function addUser(stack: RunningStack, username: string, args: string[] = []): Promise<void> {
  const added = await stack.admin(['users', 'add', username, ...args], `${PASSWORD}\n`);
  expect(added.code, added.stderr).to.equal(0);
}

describe('token issuing (running stack)', function () {
  this.timeout(120_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
  - { name: local, iss: "http://gateway.test", audience: api, algorithms: [ES256], sidecar_keys: true }
token_issuing:
  access_token_ttl: 5m
  bcrypt_cost: 10
  login_throttle: { per_username: { failures: 10, window: 1m }, per_ip: { failures: 1000, window: 1m } }
routes:
  - { name: auth, paths: [/auth, /.well-known/jwks.json], serve: token_endpoints, auth: none, rate_limit: { by: ip, minute: 1000 } }
  - { name: api, paths: [/api], upstream: "${upstream}", auth: required }
`,
    );
    await addUser(stack, 'alice', ['--groups', 'customers,staff']);
  });
  after(async () => {
    await stack?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const api = (token: string) => stack.call('/api/orders', { Authorization: `Bearer ${token}` });

  it('logs in with bcrypt; the access token (at+jwt, kid) opens the API; the login is audited, its password nowhere', async () => {
    const answer = await login(stack, 'alice');
    expect(answer.status).to.equal(200);
    expect(answer.body).to.include({ token_type: 'Bearer', expires_in: 300 });
    expect(answer.body['refresh_token']).to.match(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(answer.headers.get('cache-control')).to.equal('no-store');
    const token = answer.body['access_token'] as string;
    expect(headerOf(token)).to.include({ alg: 'ES256', typ: 'at+jwt' });
    expect(headerOf(token)['kid']).to.be.a('string');

    const used = await api(token);
    expect(used.status).to.equal(200);
    expect(stack.upstream.find(used.requestId)?.headers).to.include({ 'x-consumer-id': 'local:alice', 'x-consumer-groups': 'customers,staff' });

    const event = await stack.auditEvent(answer.requestId);
    expect(event).to.include({ route: 'auth', decision: 'allow', sub: 'alice', consumer: 'local:alice', detail: 'login', status: 200 });
    expect(JSON.stringify(event)).not.to.include(PASSWORD);
    expect(stack.output()).not.to.include(PASSWORD);
  });

  it('answers an unknown user and a wrong password alike, in about the same time', async () => {
    const unknown: Answer[] = [];
    const wrong: Answer[] = [];
    for (let i = 0; i < 5; i++) {
      unknown.push(await login(stack, `nobody${i}`, 'a wrong password'));
      wrong.push(await login(stack, 'alice', 'a wrong password'));
    }
    for (const a of [...unknown, ...wrong]) {
      expect(a.status).to.equal(401);
      expect(a.body).to.include({ reason: 'invalid_credentials', error: 'the username or password is wrong' });
    }
    const median = (list: Answer[]) => list.map((a) => a.ms).sort((x, y) => x - y)[2]!;
    // Both run one bcrypt check of cost 10 (~80 ms here): a missing user skips none of it.
    const ratio = median(unknown) / median(wrong);
    expect(ratio, `unknown ${median(unknown).toFixed(0)} ms, wrong ${median(wrong).toFixed(0)} ms`).to.be.within(0.6, 1.6);
    expect(await stack.auditEvent(unknown[0]!.requestId)).to.include({ decision: 'deny', reason: 'invalid_credentials', detail: 'unknown_user', sub: null });
    expect(await stack.auditEvent(wrong[0]!.requestId)).to.include({ decision: 'deny', reason: 'invalid_credentials', detail: 'wrong_password', sub: 'alice' });
    // Clear alice's failures for the other tests.
    expect((await login(stack, 'alice')).status).to.equal(200);
  });

  it('refuses malformed logins with a clear error: over 72 bytes, not JSON, not application/json, wrong method', async () => {
    const long = await login(stack, 'alice', 'é'.repeat(37));
    expect(long.status).to.equal(400);
    expect(long.body).to.include({ reason: 'password_too_long' });
    expect((await send(stack, 'POST', '/auth/login', '{"username": ')).body).to.include({ reason: 'bad_request' });
    const form = await send(stack, 'POST', '/auth/login', undefined, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status).to.equal(415);
    const get = await send(stack, 'GET', '/auth/login');
    expect(get.status).to.equal(405);
    expect(get.headers.get('allow')).to.equal('POST');
    expect((await send(stack, 'POST', '/auth/elsewhere', {})).status).to.equal(404);
  });

  it('throttles failed logins per username: 429 with Retry-After, even with the right password', async () => {
    await addUser(stack, 'carol');
    for (let i = 0; i < 10; i++) expect((await login(stack, 'carol', 'guess number ' + i)).status).to.equal(401);
    const throttled = await login(stack, 'carol');
    expect(throttled.status).to.equal(429);
    expect(throttled.body).to.include({ reason: 'login_throttled' });
    expect(Number(throttled.headers.get('retry-after'))).to.be.within(1, 60);
    expect(await stack.auditEvent(throttled.requestId)).to.include({ decision: 'deny', reason: 'login_throttled', detail: 'throttled' });
  });

  it('rotates refresh tokens; a rotated-out one coming back revokes the family and its last access token (refresh_reuse)', async () => {
    const first = await login(stack, 'alice');
    const r1 = first.body['refresh_token'] as string;
    const second = await send(stack, 'POST', '/auth/refresh', { refresh_token: r1 });
    expect(second.status).to.equal(200);
    const r2 = second.body['refresh_token'] as string;
    const access2 = second.body['access_token'] as string;
    expect(r2).not.to.equal(r1);
    expect((await api(access2)).status).to.equal(200);
    expect(await stack.auditEvent(second.requestId)).to.include({ decision: 'allow', detail: 'refresh', sub: 'alice' });

    const reused = await send(stack, 'POST', '/auth/refresh', { refresh_token: r1 });
    expect(reused.status).to.equal(401);
    expect(reused.body).to.include({ reason: 'refresh_invalid' });
    expect(await stack.auditEvent(reused.requestId)).to.include({ decision: 'deny', reason: 'refresh_invalid', detail: 'refresh_reuse', sub: 'alice' });
    // The whole family is gone, the newest token too, and the access token it last issued.
    const newest = await send(stack, 'POST', '/auth/refresh', { refresh_token: r2 });
    expect(newest.status).to.equal(401);
    expect(await stack.auditEvent(newest.requestId)).to.include({ detail: 'family_revoked' });
    const revoked = await api(access2);
    expect(revoked.status).to.equal(401);
    expect(await stack.auditEvent(revoked.requestId)).to.include({ reason: 'token_revoked' });
    expect((await send(stack, 'POST', '/auth/refresh', { refresh_token: 'x'.repeat(22) + '.' + 'y'.repeat(43) })).status).to.equal(401);
  });

  it('logout revokes the access token and the refresh family', async () => {
    const session = await login(stack, 'alice');
    const access = session.body['access_token'] as string;
    const out = await send(stack, 'POST', '/auth/logout', { refresh_token: session.body['refresh_token'] }, { Authorization: `Bearer ${access}` });
    expect(out.status).to.equal(204);
    expect(await stack.auditEvent(out.requestId)).to.include({ decision: 'allow', detail: 'revoked:access_token,refresh_family', sub: 'alice' });
    expect((await api(access)).status).to.equal(401);
    expect((await send(stack, 'POST', '/auth/refresh', { refresh_token: session.body['refresh_token'] })).status).to.equal(401);
    // Logging out again still ends logged out.
    expect((await send(stack, 'POST', '/auth/logout', { refresh_token: session.body['refresh_token'] })).status).to.equal(204);
  });

  it('publishes its keys at /.well-known/jwks.json: an access token verifies with the key its kid names', async () => {
    const token = (await login(stack, 'alice')).body['access_token'] as string;
    const jwks = await send(stack, 'GET', '/.well-known/jwks.json');
    expect(jwks.status).to.equal(200);
    const keys = jwks.body['keys'] as Record<string, string>[];
    const jwk = keys.find((k) => k['kid'] === headerOf(token)['kid']);
    expect(jwk).to.include({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk).not.to.have.property('d');
    const [h, p, s] = token.split('.') as [string, string, string];
    const key = createPublicKey({ key: jwk!, format: 'jwk' });
    expect(verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).to.equal(true);
  });

  it('keys rotate: new tokens carry the new kid, a token of the old key stays valid, both are published; revoke --kid ends the old key within 1 s', async () => {
    const old = (await login(stack, 'alice')).body['access_token'] as string;
    const oldKid = headerOf(old)['kid']!;
    expect((await api(old)).status).to.equal(200); // now in the verified-token cache
    const rotated = await stack.admin(['keys', 'rotate']);
    expect(rotated.code, rotated.stderr).to.equal(0);
    const fresh = await eventually(async () => {
      const token = (await login(stack, 'alice')).body['access_token'] as string;
      return headerOf(token)['kid'] !== oldKid ? token : undefined;
    }, 15_000, 'a token signed with the new key');
    const newKid = headerOf(fresh)['kid']!;
    expect((await api(fresh)).status).to.equal(200);
    expect((await api(old)).status).to.equal(200);
    const published = ((await send(stack, 'GET', '/.well-known/jwks.json')).body['keys'] as { kid: string }[]).map((k) => k.kid);
    expect(published).to.include.members([oldKid, newKid]);

    const current = await stack.admin(['revoke', '--kid', newKid, '--reason', 'test']);
    expect(current.code).to.equal(2);
    expect(current.stderr).to.include('current signing key');
    const revokedAt = performance.now();
    const revoke = await stack.admin(['revoke', '--kid', oldKid, '--reason', 'key leaked in a test']);
    expect(revoke.code, revoke.stderr).to.equal(0);
    const refused = await eventually(async () => {
      const answer = await api(old);
      return answer.status === 401 ? answer : undefined;
    }, 5_000, 'the old key to be revoked');
    // The CLI's own run (node start, Redis, the audit publish) is inside this figure too.
    expect(performance.now() - revokedAt).to.be.below(3_000);
    expect(await stack.auditEvent(refused.requestId)).to.include({ reason: 'token_revoked', detail: 'kid_revoked' });
    expect((await api(fresh)).status).to.equal(200);
  });

  it('a banned consumer gets no tokens (403 banned, only once its password matched), its session kept for when the ban is lifted', async () => {
    await addUser(stack, 'frank');
    const session = await login(stack, 'frank');
    expect(session.status).to.equal(200);
    const banned = await stack.admin(['bans', 'add', '--consumer', 'local:frank', '--ttl', '10m', '--reason', 'a test ban']);
    expect(banned.code, banned.stderr).to.equal(0);
    const refused = await login(stack, 'frank');
    expect(refused.status).to.equal(403);
    expect(refused.body).to.include({ reason: 'banned' });
    expect(refused.body).to.not.have.property('access_token');
    expect(await stack.auditEvent(refused.requestId)).to.include({ decision: 'deny', reason: 'banned', detail: 'consumer', consumer: 'local:frank' });
    // A guesser without the password learns nothing of the ban.
    expect((await login(stack, 'frank', 'not the password')).status).to.equal(401);
    const refresh = () => send(stack, 'POST', '/auth/refresh', { refresh_token: session.body['refresh_token'] });
    const refusedRefresh = await refresh();
    expect(refusedRefresh.status).to.equal(403);
    expect(refusedRefresh.body).to.not.have.property('access_token');
    const lifted = await stack.admin(['bans', 'remove', '--consumer', 'local:frank', '--reason', 'end of the test']);
    expect(lifted.code, lifted.stderr).to.equal(0);
    expect((await refresh()).status).to.equal(200);
    expect((await login(stack, 'frank')).status).to.equal(200);
  });

  it('users disable ends the logins and tokens of a user; enable lets it log in again; set-password changes the password; each change audited', async () => {
    await addUser(stack, 'dave');
    const session = await login(stack, 'dave');
    const access = session.body['access_token'] as string;
    const disabled = await stack.admin(['users', 'disable', 'dave']);
    expect(disabled.code, disabled.stderr).to.equal(0);
    const refused = await login(stack, 'dave');
    expect(refused.status).to.equal(401);
    expect(await stack.auditEvent(refused.requestId)).to.include({ detail: 'user_disabled' });
    expect((await send(stack, 'POST', '/auth/refresh', { refresh_token: session.body['refresh_token'] })).status).to.equal(401);
    expect((await api(access)).status).to.equal(401);

    expect((await stack.admin(['users', 'enable', 'dave'])).code).to.equal(0);
    expect((await login(stack, 'dave')).status).to.equal(200);
    const changed = await stack.admin(['users', 'set-password', 'dave'], 'a brand new password\n');
    expect(changed.code, changed.stderr).to.equal(0);
    expect((await login(stack, 'dave')).status).to.equal(401);
    expect((await login(stack, 'dave', 'a brand new password')).status).to.equal(200);
    // Every change of who may log in is a security event, oldest last.
    const changes = (await stack.auditEvents({ kind: 'security', consumer: 'local:dave' }, (list) => list.length >= 4)) as unknown as { kind: string; subject: string; reason: string }[];
    expect(changes.map((c) => [c.kind, c.subject, c.reason]).reverse()).to.deep.equal([
      ['user_add', 'local:dave', 'user added [groups (none), tier (default)]'],
      ['revoke', 'local:dave', 'user disabled'],
      ['user_enable', 'local:dave', 'user enabled'],
      ['revoke', 'local:dave', 'password changed'],
    ]);

    const list = await stack.admin(['users', 'list', '--json']);
    const users = JSON.parse(list.stdout) as { username: string; disabled: boolean; groups: string[] }[];
    expect(users.map((u) => u.username)).to.include.members(['alice', 'carol', 'dave']);
    expect(users.find((u) => u.username === 'alice')).to.include({ disabled: false });
    expect(list.stdout).not.to.include('$2');
    const duplicate = await stack.admin(['users', 'add', 'dave'], `${PASSWORD}\n`);
    expect(duplicate.code).to.equal(2);
    const short = await stack.admin(['users', 'add', 'erin'], 'short\n');
    expect(short.code).to.equal(2);
    expect(short.stderr).to.include('shorter than 8');
  });
});

describe('token issuing in cookie mode (running stack)', function () {
  this.timeout(60_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - { name: local, iss: "http://gateway.test", algorithms: [EdDSA], sidecar_keys: true }
token_issuing:
  algorithm: EdDSA
  bcrypt_cost: 10
  refresh_cookie: { name: gw_refresh }
routes:
  - { name: auth, paths: [/auth, /.well-known/jwks.json], serve: token_endpoints, auth: none, rate_limit: { by: ip, minute: 6 } }
  - { name: api, paths: [/api], upstream: "${upstream}", auth: required }
`,
    );
    await addUser(stack, 'alice');
  });
  after(async () => {
    await stack?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('keeps the refresh token in an HttpOnly; Secure; SameSite=Strict cookie for /auth/, rotates it, and clears it at logout; the endpoints are rate limited', async () => {
    const session = await login(stack, 'alice');
    expect(session.status).to.equal(200);
    expect(session.body).not.to.have.property('refresh_token');
    expect(headerOf(session.body['access_token'] as string)).to.include({ alg: 'EdDSA' });
    const cookie = session.headers.get('set-cookie')!;
    expect(cookie).to.match(/^gw_refresh=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}; Path=\/auth\/; Max-Age=604800; HttpOnly; Secure; SameSite=Strict$/);
    const first = cookie.split(';')[0]!;

    const refreshed = await send(stack, 'POST', '/auth/refresh', undefined, { Cookie: first });
    expect(refreshed.status).to.equal(200);
    const second = refreshed.headers.get('set-cookie')!.split(';')[0]!;
    expect(second).not.to.equal(first);

    const out = await send(stack, 'POST', '/auth/logout', undefined, { Cookie: second });
    expect(out.status).to.equal(204);
    expect(out.headers.get('set-cookie')).to.equal('gw_refresh=; Path=/auth/; Max-Age=0; HttpOnly; Secure; SameSite=Strict');
    const after = await send(stack, 'POST', '/auth/refresh', undefined, { Cookie: second });
    expect(after.status).to.equal(401);

    // Four calls so far, limit 6 a minute per ip: the seventh is refused by the gateway's check.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(stack, 'GET', '/.well-known/jwks.json')).status);
    expect(statuses).to.deep.equal([200, 200, 429]);
  });
});
