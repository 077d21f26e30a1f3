/**
 * Hostile requests through the built processes, sent over bare sockets: bodies over a route's
 * limit (declared and chunked), hop-by-hop headers, a `Trailer`, Host values outside the
 * allow-list, hostile request ids and paths, and the upstream's `Server` / `X-Powered-By`.
 * Each case records a row of the chaos table, then asserts on it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { chunk, RawClient, type RawResponse } from '../helpers/raw-http.js';
import { RunningStack } from '../helpers/running-stack.js';
import { recordCase } from './report.js';

const HOST = 'api.example.com';

/** What the body-reading upstream saw of one request. */
interface SinkRequest {
  bytes: number;
  ended: boolean;
  aborted: boolean;
}

/** An upstream that reads the whole body before answering, and says who it is while answering. */
async function startSink(): Promise<{ server: Server; url: string; seen: Map<string, SinkRequest> }> {
  const seen = new Map<string, SinkRequest>();
  const server = createServer((req, res) => {
    const entry: SinkRequest = { bytes: 0, ended: false, aborted: false };
    seen.set(String(req.headers['x-request-id']), entry);
    req.on('data', (data: Buffer) => (entry.bytes += data.length));
    req.on('end', () => {
      entry.ended = true;
      res.writeHead(200, { 'Content-Type': 'text/plain', Server: 'secret-upstream/1.2.3', 'X-Powered-By': 'PHP/5.4.1' });
      res.end(`read ${entry.bytes}`);
    });
    req.on('close', () => {
      if (!entry.ended) entry.aborted = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('hostile requests, through the real gateway', function () {
  this.timeout(30_000);
  let stack: RunningStack;
  let sink: Awaited<ReturnType<typeof startSink>>;
  const clients: RawClient[] = [];

  before(async () => {
    sink = await startSink();
    stack = await RunningStack.start(
      (upstream) => `
routes:
  - { name: open, paths: [/open], upstream: "${upstream}", auth: none }
  - { name: small, paths: [/small], upstream: "${upstream}", auth: none, max_body_bytes: 1000 }
  - { name: sink, paths: [/sink], upstream: "${sink.url}", auth: none, max_body_bytes: 1000 }
  - { name: nobody, paths: [/nobody], upstream: "${upstream}", auth: none, max_body_bytes: 0 }
gateway: { allowed_hosts: [${HOST}, "good.example:8443"] }
`,
    );
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await stack?.stop();
    sink?.server.closeAllConnections();
    await new Promise((resolve) => sink?.server.close(resolve));
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  async function open(): Promise<RawClient> {
    const client = await RawClient.open(stack.gatewayUrl);
    clients.push(client);
    return client;
  }

  /** The head of a request; `extra` are raw header lines. */
  function head(method: string, path: string, requestId: string, extra: string[] = [], host = HOST): string {
    return [`${method} ${path} HTTP/1.1`, `Host: ${host}`, `X-Request-Id: ${requestId}`, ...extra, '', ''].join('\r\n');
  }

  /** Sends one request with `Connection: close` and returns the answer once the gateway closed. */
  async function exchange(text: string): Promise<RawResponse> {
    const client = await open();
    client.write(text);
    const answer = await client.closed();
    if (!answer) throw new Error('the gateway closed without answering');
    return answer;
  }

  const reasonOf = (answer: RawResponse): string => {
    try {
      return (JSON.parse(answer.body) as { reason?: string }).reason ?? '-';
    } catch {
      return '-';
    }
  };
  const observed = (answer: RawResponse | undefined): string => (answer ? `${answer.status} ${reasonOf(answer)}` : 'no answer');

  it('answers 413 payload_too_large to a Content-Length over the default 1 MiB without reading the body, and closes', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const client = await open();
    client.write(head('POST', '/open/upload', requestId, ['Content-Length: 1048577', 'Content-Type: application/octet-stream']));
    const answer = await client.response().catch(() => undefined);
    const closed = answer ? await client.closed().then(() => true, () => false) : false;
    const pass = recordCase({
      kind: 'hostile input',
      name: 'Content-Length 1 MiB + 1, no body sent',
      expected: '413 payload_too_large, closed',
      observed: `${observed(answer)}${closed ? ', closed' : ', open'}`,
      pass: answer?.status === 413 && reasonOf(answer) === 'payload_too_large' && closed,
    });
    expect(pass, observed(answer)).to.equal(true);
    expect(stack.upstream.find(requestId)).to.equal(undefined);
    const event = await stack.auditEvent(requestId);
    expect([event.status, event.reason, event.detail, event.route]).to.deep.equal([413, 'payload_too_large', 'content_length', 'open']);
  });

  it('answers 413 to a chunked body that grows past the route limit before the upstream answered, and aborts the upstream request', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const client = await open();
    client.write(head('POST', '/sink/upload', requestId, ['Transfer-Encoding: chunked']) + chunk('a'.repeat(600)));
    // The body is being proxied: the upstream has its first 600 bytes (and answers only at its end).
    await eventually(() => ((sink.seen.get(requestId)?.bytes ?? 0) >= 600 ? true : undefined), 5_000, 'the first chunk upstream');
    client.write(chunk('b'.repeat(600)) + chunk('c'.repeat(600)) + '0\r\n\r\n');
    const answer = await client.closed().catch(() => undefined);
    const upstreamSide = await eventually(() => {
      const entry = sink.seen.get(requestId);
      return entry && (entry.ended || entry.aborted) ? entry : undefined;
    }, 5_000, 'the upstream request to end or abort').catch(() => sink.seen.get(requestId));
    const pass = recordCase({
      kind: 'hostile input',
      name: 'chunked body 1800 bytes, route limit 1000',
      expected: '413 payload_too_large, closed, upstream aborted',
      observed: `${observed(answer)}${client.isClosed ? ', closed' : ''}, upstream ${upstreamSide ? `${upstreamSide.aborted ? 'aborted' : upstreamSide.ended ? 'ended' : 'waiting'} after ${upstreamSide.bytes} bytes` : 'never asked'}`,
      // The chunk that crosses the limit may reach the upstream before its request is aborted.
      pass: answer?.status === 413 && reasonOf(answer) === 'payload_too_large' && client.isClosed && upstreamSide?.aborted === true && upstreamSide.bytes <= 1200,
    });
    expect(pass, observed(answer)).to.equal(true);
    const event = await stack.auditEvent(requestId);
    expect([event.status, event.reason, event.detail]).to.deep.equal([413, 'payload_too_large', 'body_too_large']);
  });

  it('closes the connection when a chunked body grows past the limit after the upstream answered', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const client = await open();
    client.write(head('POST', '/small/upload', requestId, ['Transfer-Encoding: chunked']) + chunk('a'.repeat(600)));
    const answer = await client.response().catch(() => undefined);
    client.write(chunk('b'.repeat(600)));
    const closed = await client.closed().then(() => true, () => false);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'chunked body past 1000 bytes after the answer began',
      expected: '200 from upstream, then closed',
      observed: `${answer?.status ?? 'no answer'}${closed ? ', closed' : ', open'}`,
      pass: answer?.status === 200 && closed,
    });
    expect(pass).to.equal(true);
  });

  it('refuses a body on a route that accepts none (max_body_bytes: 0), declared or chunked', async () => {
    const declared = await exchange(head('POST', '/nobody/x', `hostile-${randomUUID()}`, ['Content-Length: 5', 'Connection: close']) + 'hello');
    const chunkedId = `hostile-${randomUUID()}`;
    const chunked = await exchange(head('POST', '/nobody/x', chunkedId, ['Transfer-Encoding: chunked', 'Connection: close']) + chunk('hello') + '0\r\n\r\n');
    const bodiless = await exchange(head('GET', '/nobody/x', `hostile-${randomUUID()}`, ['Connection: close']));
    const pass = recordCase({
      kind: 'hostile input',
      name: 'body to a route with max_body_bytes: 0',
      expected: '413 payload_too_large (declared, chunked); GET 200',
      observed: `${observed(declared)}; ${observed(chunked)}; GET ${bodiless.status}`,
      pass: declared.status === 413 && chunked.status === 413 && reasonOf(chunked) === 'payload_too_large' && bodiless.status === 200,
    });
    expect(pass).to.equal(true);
    expect((await stack.auditEvent(chunkedId)).detail).to.equal('body_not_accepted');
  });

  for (const method of ['DELETE', 'OPTIONS']) {
    it(`does not let a chunked ${method} body reach the upstream as a request of its own`, async () => {
      const requestId = `hostile-${randomUUID()}`;
      const smuggledId = `smuggled-${randomUUID()}`;
      const smuggled = `GET /open/smuggled HTTP/1.1\r\nHost: upstream\r\nX-Request-Id: ${smuggledId}\r\n\r\n`;
      const answer = await exchange(head(method, '/open/x', requestId, ['Transfer-Encoding: chunked', 'Connection: close']) + chunk(smuggled) + '0\r\n\r\n');
      // A later request on the gateway's pooled upstream connection: the smuggled one would come first.
      const after = await exchange(head('GET', '/open/after', `hostile-${randomUUID()}`, ['Connection: close']));
      const reached = stack.upstream.requests.filter((r) => r.headers['x-request-id'] === smuggledId);
      const pass = recordCase({
        kind: 'hostile input',
        name: `${method} with a chunked body holding a request`,
        expected: '200, the body stays a body upstream',
        observed: `${answer.status}; ${reached.length ? `the upstream served ${reached.map((r) => `${r.method} ${r.url}`).join(', ')}` : 'nothing smuggled'}`,
        pass: answer.status === 200 && after.status === 200 && reached.length === 0,
      });
      expect(pass).to.equal(true);
      expect(stack.upstream.find(requestId)?.headers['transfer-encoding']).to.equal('chunked');
      // A body-less one still goes upstream as an empty body, as http-proxy had it.
      const bodilessId = `hostile-${randomUUID()}`;
      expect((await exchange(head(method, '/open/y', bodilessId, ['Connection: close']))).status).to.equal(200);
      expect(stack.upstream.find(bodilessId)?.headers['content-length']).to.equal('0');
    });
  }

  it('refuses a chunked DELETE body over the route limit', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const answer = await exchange(head('DELETE', '/small/x', requestId, ['Transfer-Encoding: chunked', 'Connection: close']) + chunk('d'.repeat(1200)) + '0\r\n\r\n');
    const pass = recordCase({
      kind: 'hostile input',
      name: 'chunked DELETE body 1200 bytes, route limit 1000',
      expected: '413 payload_too_large',
      observed: observed(answer),
      pass: answer.status === 413 && reasonOf(answer) === 'payload_too_large',
    });
    expect(pass).to.equal(true);
  });

  it('removes hop-by-hop headers and the headers Connection names before proxying', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const answer = await exchange(
      head('GET', '/open/hop', requestId, [
        'Connection: close, X-Secret-Hop',
        'X-Secret-Hop: internal',
        'Keep-Alive: timeout=600',
        'TE: trailers',
        'Upgrade: h2c',
        'Proxy-Authorization: Basic dXNlcjpwYXNz',
        'Proxy-Connection: keep-alive',
        'X-Kept: yes',
      ]),
    );
    const seen = stack.upstream.find(requestId)?.headers ?? {};
    const leaked = ['x-secret-hop', 'keep-alive', 'te', 'upgrade', 'proxy-authorization', 'proxy-connection'].filter((name) => seen[name] !== undefined);
    // The upstream connection is the gateway's keep-alive pool's: its Connection header is the agent's own.
    if (seen.connection !== 'keep-alive') leaked.push(`connection: ${seen.connection}`);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'hop-by-hop headers (Connection: close, X-Secret-Hop; Keep-Alive, TE, Upgrade, Proxy-*)',
      expected: '200, none reach the upstream',
      observed: `${answer.status}, reached the upstream: ${leaked.join(', ') || 'none'}`,
      pass: answer.status === 200 && leaked.length === 0 && seen['x-kept'] === 'yes',
    });
    expect(pass, leaked.join(', ')).to.equal(true);
  });

  it('proxies a chunked body with a Trailer header and a trailer without stalling', async () => {
    const requestId = `hostile-${randomUUID()}`;
    const client = await open();
    client.write(head('POST', '/sink/trailer', requestId, ['Transfer-Encoding: chunked', 'Trailer: X-Checksum', 'Connection: close']) + chunk('hello') + '0\r\nX-Checksum: abc\r\n\r\n');
    const answer = await client.closed().catch(() => undefined);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'chunked body with Trailer: X-Checksum (http-proxy#1647)',
      expected: '200, upstream read 5 bytes',
      observed: answer ? `${answer.status} ${answer.body.includes('read 5') ? 'upstream read 5 bytes' : answer.body.slice(0, 40)}` : 'stalled',
      pass: answer?.status === 200 && answer.body.includes('read 5'),
    });
    expect(pass).to.equal(true);
    expect(sink.seen.get(requestId)).to.deep.include({ bytes: 5, ended: true });
  });

  for (const [what, framing, body] of [
    ['no body', [], ''],
    ['a Content-Length body', ['Content-Length: 5'], 'hello'],
  ] as const) {
    it(`proxies a request with a Trailer header and ${what} without stalling`, async () => {
      const requestId = `hostile-${randomUUID()}`;
      const client = await open();
      client.write(head(body ? 'POST' : 'GET', '/sink/trailer', requestId, [...framing, 'Trailer: X-Checksum', 'Connection: close']) + body);
      const answer = await client.closed().catch(() => undefined);
      const pass = recordCase({
        kind: 'hostile input',
        name: `Trailer: X-Checksum with ${what} (http-proxy#1647)`,
        expected: `200, upstream read ${body.length} bytes`,
        observed: answer ? `${answer.status}, upstream ${/read \d+/.exec(answer.body)?.[0] ?? 'not reached'}` : 'stalled',
        pass: answer?.status === 200 && answer.body.includes(`read ${body.length}`),
      });
      expect(pass, answer?.body).to.equal(true);
    });
  }

  it('answers 421 misdirected_request to a Host outside gateway.allowed_hosts, and serves the listed ones', async () => {
    const refusedId = `hostile-${randomUUID()}`;
    const statusOf = async (host: string | undefined, requestId = `hostile-${randomUUID()}`): Promise<string> => {
      const lines = [`GET /open/host HTTP/1.1`, ...(host === undefined ? [] : [`Host: ${host}`]), `X-Request-Id: ${requestId}`, 'Connection: close', '', ''];
      return observed(await exchange(lines.join('\r\n')));
    };
    const answers = {
      'evil.example': await statusOf('evil.example', refusedId),
      'good.example:9999': await statusOf('good.example:9999'),
      'no Host': await statusOf(undefined),
      'API.Example.COM:8080': await statusOf('API.Example.COM:8080'),
      'good.example:8443': await statusOf('good.example:8443'),
    };
    const absolute = observed(await exchange(['GET http://evil.example/open/host HTTP/1.1', `Host: ${HOST}`, 'Connection: close', '', ''].join('\r\n')));
    const refused = ['evil.example', 'good.example:9999'] as const;
    const pass = recordCase({
      kind: 'hostile input',
      name: 'Host outside gateway.allowed_hosts',
      expected: '421 misdirected_request; listed hosts 200; absolute-form 400',
      observed: `${Object.entries(answers).map(([host, answer]) => `${host}: ${answer}`).join('; ')}; absolute-form: ${absolute}`,
      pass:
        refused.every((host) => answers[host] === '421 misdirected_request') &&
        answers['no Host'].startsWith('400') &&
        absolute === '400 bad_request' &&
        answers['API.Example.COM:8080'].startsWith('200') &&
        answers['good.example:8443'].startsWith('200'),
    });
    expect(pass, JSON.stringify(answers)).to.equal(true);
    const event = await stack.auditEvent(refusedId);
    expect([event.status, event.reason, event.detail]).to.deep.equal([421, 'misdirected_request', 'host_not_allowed']);
  });

  it("does not disclose the upstream's Server and X-Powered-By, nor add its own", async () => {
    const proxied = await exchange(head('GET', '/sink/who', `hostile-${randomUUID()}`, ['Connection: close']));
    const own = await exchange(head('GET', '/nowhere', `hostile-${randomUUID()}`, ['Connection: close']));
    const health = await exchange(head('GET', '/__gateway/health', `hostile-${randomUUID()}`, ['Connection: close']));
    const disclosed = [proxied, own, health].flatMap((a) => [a.headers['server'], a.headers['x-powered-by']]).filter((v) => v !== undefined);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'upstream Server / X-Powered-By; gateway answers',
      expected: 'no Server, no X-Powered-By',
      observed: disclosed.length ? `disclosed: ${disclosed.join(', ')}` : `none (${proxied.status}, ${own.status}, ${health.status})`,
      pass: disclosed.length === 0 && proxied.status === 200 && own.status === 404,
    });
    expect(pass, disclosed.join(', ')).to.equal(true);
  });

  it('never echoes a hostile request id or path in an error body', async () => {
    const hostileId = `"><script>alert('x')</script>`;
    const answers = [
      await exchange(head('GET', '/nowhere/<script>alert(1)</script>', hostileId, ['Connection: close'])),
      await exchange(head('GET', `/nowhere/"quoted'`, hostileId, ['Connection: close'])),
      await exchange(head('GET', '/nowhere/%3Cscript%3E', hostileId, ['Connection: close'])),
    ];
    const bodies = answers.map((a) => JSON.parse(a.body) as Record<string, unknown>);
    const echoed = answers.filter((a) => /<|>|script|quoted/i.test(a.body) || a.headers['x-request-id'] === hostileId);
    const pass = recordCase({
      kind: 'hostile input',
      name: 'X-Request-Id and path holding <script> and quotes',
      expected: 'JSON error, fresh request id, nothing echoed',
      observed: answers.map((a) => `${a.status} ${a.headers['content-type']}`).join('; ') + (echoed.length ? `; echoed in ${echoed.length}` : ''),
      pass:
        echoed.length === 0 &&
        answers.every((a) => a.headers['content-type'] === 'application/json') &&
        bodies.every((b) => Object.keys(b).sort().join() === 'error,reason,request_id' && /^[0-9a-f-]{36}$/.test(String(b.request_id))),
    });
    expect(pass, answers.map((a) => a.body).join(' | ')).to.equal(true);
  });
});
