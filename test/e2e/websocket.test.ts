/**
 * WebSockets and streaming through the real gateway, sidecar, worker and admin CLI: a valid
 * token upgrades and echoes, no token is 401 before the upgrade, a route without `websocket` is
 * 400, a revocation, a ban or the token's expiry closes an open socket with 1008 within the stated bound, the audit
 * event carries duration and bytes each way; server-sent events stream unbuffered.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

/** An upstream with a WebSocket echo at /live and server-sent events at /events (held open until `endEvents`). */
class StreamingUpstream {
  private held: ServerResponse[] = [];
  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
  ) {}

  static async start(): Promise<StreamingUpstream> {
    let upstream: StreamingUpstream | undefined;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      res.write('data: first\n\n');
      upstream?.held.push(res);
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket, req) => {
      socket.send(`hello ${req.headers['x-consumer-id'] ?? 'anonymous'} ${req.url}`);
      socket.on('message', (data) => socket.send(`echo ${String(data)}`));
    });
    upstream = new StreamingUpstream(server, wss);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  endEvents(): void {
    for (const res of this.held.splice(0)) res.end('data: last\n\n');
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Opens a socket; resolves it with its first message once open, or the refusal's status. */
function connect(url: string): Promise<{ socket: WebSocket; first: string } | { status: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { 'x-request-id': `ws-${Math.random().toString(36).slice(2)}` } });
    socket.once('message', (data) => resolve({ socket, first: String(data) }));
    socket.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    socket.once('error', reject);
  });
}

describe('WebSockets and streaming (running stack)', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let upstream: StreamingUpstream;
  const wsUrl = (path: string) => stack.gatewayUrl.replace('http', 'ws') + path;

  before(async () => {
    upstream = await StreamingUpstream.start();
    stack = await RunningStack.start(
      () => `
issuers:
  - ${STACK_ISSUER_YAML}
  - { name: brief, iss: brief-issuer, audience: api, algorithms: [HS256], secret_env: E2E_SECRET, clock_skew_seconds: 0 }
routes:
  - { name: live, paths: [/live], upstream: "${upstream.url}", auth: { mode: required, token: { query: access_token } }, websocket: true }
  - { name: plain, paths: [/plain], upstream: "${upstream.url}", auth: none }
  - { name: events, paths: [/events], upstream: "${upstream.url}", auth: none }
`,
    );
  });
  after(async () => {
    await stack?.stop();
    await upstream?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  it('a valid token upgrades and echoes (token stripped from the URL); the audit event, written at close, has 101, the duration and bytes each way', async () => {
    const opened = await connect(wsUrl(`/live/room?access_token=${stack.token({ sub: 'ws-alice' })}&x=1`));
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const { socket, first } = opened;
    expect(first).to.equal('hello e2e:ws-alice /live/room?x=1');
    socket.send('ping');
    const [echo] = await once(socket, 'message');
    expect(String(echo)).to.equal('echo ping');
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.close(1000, 'done');
    await once(socket, 'close');
    const events = await stack.auditEvents({ route: 'live' }, (list) => list.length >= 1);
    const event = events[0]!;
    expect(event).to.include({ status: 101, decision: 'allow', consumer: 'e2e:ws-alice', upstream_status: 101, upstream_tries: 1 });
    expect(event.latency_ms).to.be.at.least(300);
    expect(event.bytes_in).to.be.greaterThan(100); // the handshake, then the masked frame
    expect(event.bytes_out).to.be.greaterThan(150);
  });

  it('no token: 401 before any upgrade; a route without websocket: 400', async () => {
    expect(await connect(wsUrl('/live/room'))).to.deep.equal({ status: 401 });
    expect(await connect(wsUrl('/plain/x'))).to.deep.equal({ status: 400 });
    const refused = await stack.auditEvents({ route: 'plain' }, (list) => list.length >= 1);
    expect(refused[0]).to.include({ status: 400, reason: 'bad_request', detail: 'websocket_not_allowed' });
  });

  it('a revoked token closes its open socket with 1008 within 1 s of the revocation', async () => {
    const jti = `ws-jti-${Date.now()}`;
    const opened = await connect(wsUrl(`/live/r?access_token=${stack.token({ sub: 'ws-bob', jti })}`));
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const closed = once(opened.socket, 'close');
    const revoked = await stack.admin(['revoke', '--jti', jti, '--reason', 'stolen in a test']);
    expect(revoked.code, revoked.stderr).to.equal(0);
    const revokedAt = performance.now();
    const [code, reason] = (await closed) as [number, Buffer];
    expect(code).to.equal(1008);
    expect(String(reason)).to.equal('token revoked');
    expect(performance.now() - revokedAt).to.be.below(1_000);
    const events = await stack.auditEvents({ consumer: 'e2e:ws-bob' }, (list) => list.length >= 1);
    expect(events[0]).to.include({ status: 101, detail: 'closed:token_revoked', jti });
  });

  it('a socket is closed with 1008 when its token expires (exp plus the issuer\'s clock skew, here 0), not before', async () => {
    const opened = await connect(wsUrl(`/live/r?access_token=${stack.token({ sub: 'ws-dave' }, { issuer: 'brief-issuer', expiresIn: 2 })}`));
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const exp = Math.floor(Date.now() / 1000) + 2; // as jsonwebtoken computes it, give or take the second boundary
    const [code, reason] = (await once(opened.socket, 'close')) as [number, Buffer];
    const closedAt = Date.now();
    expect(code).to.equal(1008);
    expect(String(reason)).to.equal('token expired');
    expect(closedAt).to.be.at.least((exp - 1) * 1000);
    expect(closedAt).to.be.below((exp + 1) * 1000 + 500);
    const events = await stack.auditEvents({ consumer: 'brief:ws-dave' }, (list) => list.length >= 1);
    expect(events[0]).to.include({ status: 101, detail: 'closed:token_expired' });
  });

  it('a ban of the client ip closes its open sockets with 1008', async () => {
    const opened = await connect(wsUrl(`/live/r?access_token=${stack.token({ sub: 'ws-carol' })}`));
    if (!('socket' in opened)) throw new Error(`refused with ${opened.status}`);
    const closed = once(opened.socket, 'close');
    expect((await stack.admin(['bans', 'add', '--ip', '127.0.0.1', '--ttl', '1m', '--reason', 'a test ban'])).code).to.equal(0);
    try {
      const [code] = (await closed) as [number];
      expect(code).to.equal(1008);
    } finally {
      expect((await stack.admin(['bans', 'remove', '--ip', '127.0.0.1', '--reason', 'end of the test'])).code).to.equal(0);
    }
  });

  it('streams server-sent events unbuffered: the first event arrives before the upstream ends', async () => {
    const res = await fetch(`${stack.gatewayUrl}/events/feed`);
    expect(res.headers.get('content-type')).to.equal('text/event-stream');
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).to.equal('data: first\n\n');
    upstream.endEvents();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString();
    expect(rest).to.equal('data: last\n\n');
  });
});

