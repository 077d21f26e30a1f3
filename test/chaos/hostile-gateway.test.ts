/**
 * Hostile clients against the gateway's own defences, through the built processes: clients that
 * abort streamed responses (the upstream request must go with them), encoded slashes and
 * control characters in the path, and a slowloris client. Each case is a row of the chaos table.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { recordCase } from './report.js';

const ABORTS = 300;
const HEADERS_TIMEOUT_MS = 2_000;

describe('hostile clients against the gateway', function () {
  this.timeout(90_000);
  let stack: RunningStack;
  let streaming: Server;
  let openStreams = 0;
  let closedStreams = 0;

  before(async () => {
    // Streams a chunk every 100 ms until the gateway closes the request; /quick answers at once.
    streaming = createServer((req, res) => {
      if (req.url?.includes('/quick')) return void res.end('quick');
      openStreams++;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first\n');
      const timer = setInterval(() => res.write('more\n'), 100);
      res.on('close', () => {
        clearInterval(timer);
        openStreams--;
        closedStreams++;
      });
    });
    await new Promise<void>((r) => streaming.listen(0, '127.0.0.1', r));
    const streamUrl = `http://127.0.0.1:${(streaming.address() as AddressInfo).port}`;
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
tiers:
  free: { minute: 100000 }
  anonymous: { minute: 100000 }
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", acl: { allow: [customers] } }
  - { name: payments, paths: [/payments], upstream: "${upstream}", acl: { allow: [admins] } }
  - { name: files, paths: [/files], upstream: "${upstream}", auth: none, allow_encoded_slashes: true }
  - { name: stream, paths: [/stream], upstream: "${streamUrl}", auth: none }
gateway: { headers_timeout_ms: ${HEADERS_TIMEOUT_MS}, connections_check_ms: 250 }
`,
    );
  });

  after(async () => {
    await stack?.stop();
    streaming?.closeAllConnections();
    streaming?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  /** Sends raw bytes; resolves with what came back when the gateway closed or `untilMs` passed. */
  function raw(bytes: string, untilMs = 5_000): Promise<string> {
    const { port } = new URL(stack.gatewayUrl);
    return new Promise((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let data = '';
      const timer = setTimeout(() => socket.destroy(), untilMs);
      socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(data);
      });
      socket.write(bytes);
    });
  }

  /** Starts a streamed response, waits for its first bytes (at most 2 s: a full pool queues it), and hangs up. */
  function abortStream(i: number): Promise<void> {
    const { port } = new URL(stack.gatewayUrl);
    return new Promise((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      const hangUp = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(hangUp, 2_000);
      socket.once('data', hangUp);
      socket.on('error', hangUp);
      socket.write(`GET /stream/${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
  }

  it('aborts the upstream request when the client leaves, so aborting clients cannot exhaust the pool', async () => {
    for (let i = 0; i < ABORTS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => abortStream(i + j)));
    // A client that hung up before its request reached the upstream leaves nothing to close there.
    const allClosed = await eventually(() => (openStreams === 0 ? true : undefined), 5_000, 'every upstream stream closed').catch(() => false);
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${stack.gatewayUrl}/stream/quick`, { signal: AbortSignal.timeout(3_000) }).then((r) => r.status, () => 0)),
    );
    const ok = statuses.filter((s) => s === 200).length;
    const pass = recordCase({
      kind: 'hostile input',
      name: `${ABORTS} clients hang up on streamed responses`,
      expected: 'no upstream request left open; then 20/20 x 200',
      observed: `${closedStreams} upstream requests closed, ${openStreams} open; then ${ok}/20 x 200 in ${Date.now() - started} ms`,
      pass: allClosed === true && ok === 20,
    });
    expect(closedStreams, 'streams the upstream served').to.be.above(ABORTS / 2);
    expect(pass, `${closedStreams} closed, ${openStreams} open, statuses ${statuses.join(',')}`).to.equal(true);
  });

  const refused: [string, string][] = [
    ['/users/..%2fpayments', 'encoded_slash'],
    ['/users/..%2Fpayments', 'encoded_slash'],
    ['/users/..%5cpayments', 'encoded_slash'],
    ['/users/x%00.json', 'path_malformed'],
    ['/users/x%0d%0aSet-Cookie:a', 'path_malformed'],
  ];
  for (const [path, detail] of refused) {
    it(`refuses ${path} with 400 bad_request (${detail}) before any upstream`, async () => {
      const { status, requestId } = await stack.call(path, { Authorization: `Bearer ${stack.token()}` });
      const event = await stack.auditEvent(requestId);
      const pass = recordCase({
        kind: 'hostile input',
        name: `path ${path}`,
        expected: `400 bad_request/${detail}`,
        observed: `${status} ${event.reason}/${event.detail}${stack.upstream.find(requestId) ? ', forwarded' : ''}`,
        pass: status === 400 && event.reason === 'bad_request' && event.detail === detail && !stack.upstream.find(requestId),
      });
      expect(pass).to.equal(true);
    });
  }

  it('forwards an encoded slash unchanged on a route that opts in', async () => {
    const { status, requestId } = await stack.call('/files/a%2fb');
    expect(status).to.equal(200);
    expect(stack.upstream.find(requestId)?.url).to.equal('/files/a%2Fb');
  });

  it(`closes a slowloris client after the ${HEADERS_TIMEOUT_MS} ms headers timeout, serving others meanwhile`, async () => {
    const { port } = new URL(stack.gatewayUrl);
    const socket = connect(Number(port), '127.0.0.1');
    const started = Date.now();
    const head = 'GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let sent = 0;
    const drip = setInterval(() => socket.write(head[sent++ % head.length]!), 200);
    const closedAfter = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    socket.on('error', () => undefined);
    const others = await Promise.all(Array.from({ length: 5 }, () => stack.call('/files/x').then((r) => r.status)));
    const closedMs = await Promise.race([closedAfter, new Promise<number>((r) => setTimeout(() => r(-1), HEADERS_TIMEOUT_MS + 8_000))]);
    clearInterval(drip);
    socket.destroy();
    const pass = recordCase({
      kind: 'hostile input',
      name: 'slowloris: a header byte every 200 ms',
      expected: `closed within ${HEADERS_TIMEOUT_MS + 2_000} ms; others served`,
      observed: `${closedMs < 0 ? 'still open after 10 s' : `closed after ${closedMs} ms`}; others ${others.join(',')}`,
      pass: closedMs > 0 && closedMs <= HEADERS_TIMEOUT_MS + 2_000 && others.every((s) => s === 200),
    });
    expect(pass).to.equal(true);
  });

  it('closes the connection after refusing a request whose body it did not read', async () => {
    const started = Date.now();
    // Half of a declared body, then nothing: Node would wait for the rest until the request timeout.
    const answer = await raw(`POST /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(50_000)}`, 10_000);
    const closedMs = Date.now() - started;
    const pass = recordCase({
      kind: 'hostile input',
      name: 'refused request with an unsent body (keep-alive)',
      expected: '401, Connection: close, closed at once',
      observed: `${answer.slice(9, 12) || 'no answer'}, ${/\r\nconnection: close\r\n/i.test(answer) ? 'Connection: close' : 'kept alive'}, closed after ${closedMs} ms`,
      pass: answer.startsWith('HTTP/1.1 401 ') && /\r\nconnection: close\r\n/i.test(answer) && closedMs < 2_000,
    });
    expect(pass, answer.slice(0, 300)).to.equal(true);
  });

  it('audits a request without Host as 400 bad_request instead of answering outside the audit', async () => {
    const requestId = `hostless-${Date.now()}`;
    const answer = await raw(`GET /files/x HTTP/1.1\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`);
    const event = await stack.auditEvent(requestId).catch(() => undefined);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'HTTP/1.1 request without Host',
      expected: '400 bad_request/host_missing, audited',
      observed: `${answer.slice(9, 12) || 'no answer'} ${event ? `${event.reason}/${event.detail}` : 'not audited'}`,
      pass: answer.startsWith('HTTP/1.1 400 ') && event?.reason === 'bad_request' && event.detail === 'host_missing',
    });
    expect(pass, answer.slice(0, 300)).to.equal(true);
  });

  const unparsable: [string, string, number, string][] = [
    ['Content-Length with Transfer-Encoding (smuggling)', 'POST /files/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad_request'],
    ['a space before the colon of a header', 'GET /files/x HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n', 400, 'bad_request'],
    ['headers over 16 KiB', `GET /files/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
  ];
  for (const [name, bytes, status, reason] of unparsable) {
    it(`answers ${name} with ${status} ${reason}, audited, though Node's parser refused it`, async () => {
      const answer = await raw(bytes);
      const requestId = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(answer)?.[1];
      const event = requestId ? await stack.auditEvent(requestId).catch(() => undefined) : undefined;
      const pass = recordCase({
        kind: 'hostile input',
        name,
        expected: `${status} ${reason}, audited`,
        observed: `${answer.slice(9, 12) || 'no answer'} ${event ? `${event.reason}/${event.detail}` : 'not audited'}`,
        pass: answer.startsWith(`HTTP/1.1 ${status} `) && event?.reason === reason && event.status === status,
      });
      expect(pass, answer.slice(0, 300)).to.equal(true);
    });
  }

  it('answers a raw request with a bad escape with 400 and closes nothing else', async () => {
    const answer = await raw('GET /users/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).to.match(/^HTTP\/1\.1 400 /);
  });
});
