/**
 * Edges of the gateway's request path, sent the way an attacker would, through the built
 * processes: header spellings a WSGI/CGI upstream reads as the gateway's identity headers,
 * `..;` segments that Tomcat and Spring read as `..`, and the bytes of pipelined responses.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'node:http';
import { expect } from 'chai';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

describe('gateway edges, through the real processes', function () {
  this.timeout(60_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
tiers:
  free: { minute: 1000 }
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", acl: { allow: [customers, admins] } }
  - { name: payments, paths: [/payments], upstream: "${upstream}", acl: { allow: [admins] } }
  - { name: legacy, paths: [/legacy], upstream: "${upstream}", auth: none, allow_underscore_headers: true }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(stack.output());
  });

  const token = (): string => stack.token();

  /** A raw request (no client-side path normalization), answered with its status. */
  function send(path: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${stack.gatewayUrl}${path}`, { headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('removes underscore spellings of the identity headers, and every underscore header by default', async () => {
    const requestId = `edge-${randomUUID()}`;
    const status = await send('/users/7', {
      Authorization: `Bearer ${token()}`,
      'X-Request-Id': requestId,
      X_Consumer_Groups: 'admins',
      'X-Consumer_ID': 'e2e:admin',
      X_Forwarded_For: '1.2.3.4',
      X_Custom: 'kept only where a route opts in',
    });
    expect(status).to.equal(200);
    const seen = stack.upstream.find(requestId)?.headers ?? {};
    expect(Object.keys(seen).filter((name) => name.includes('_'))).to.deep.equal([]);
    expect(seen['x-consumer-groups']).to.equal('customers');
    expect(seen['x-consumer-id']).to.equal('e2e:alice');
    expect(seen['x-forwarded-for']).to.equal('127.0.0.1');
  });

  it('passes underscore headers on a route that opts in, but never the spellings of identity headers', async () => {
    const requestId = `edge-${randomUUID()}`;
    const status = await send('/legacy/1', { 'X-Request-Id': requestId, X_Consumer_Groups: 'admins', 'X-Real_IP': '1.2.3.4', X_Custom: 'yes' });
    expect(status).to.equal(200);
    const seen = stack.upstream.find(requestId)?.headers ?? {};
    expect(Object.keys(seen).filter((name) => name.includes('_'))).to.deep.equal(['x_custom']);
  });

  for (const path of ['/users/..;/payments', '/users/..;jsessionid=1/payments', '/users/%2e%2E;x/payments', '/users/.;/7']) {
    it(`refuses ${path} with 400 bad_request before it reaches an upstream`, async () => {
      const requestId = `edge-${randomUUID()}`;
      expect(await send(path, { Authorization: `Bearer ${token()}`, 'X-Request-Id': requestId })).to.equal(400);
      expect(stack.upstream.find(requestId)).to.equal(undefined);
      expect(await stack.auditEvent(requestId)).to.include({ reason: 'bad_request', detail: 'path_malformed' });
    });
  }

  it('still forwards a segment that merely carries a ; parameter', async () => {
    const requestId = `edge-${randomUUID()}`;
    expect(await send('/users/7;v=1', { Authorization: `Bearer ${token()}`, 'X-Request-Id': requestId })).to.equal(200);
    expect(stack.upstream.find(requestId)?.url).to.equal('/users/7;v=1');
  });

  it('counts each pipelined response in its own bytes_out', async () => {
    const ids = [`edge-${randomUUID()}`, `edge-${randomUUID()}`, `edge-${randomUUID()}`];
    const auth = `Bearer ${token()}`;
    const { port } = new URL(stack.gatewayUrl);
    const socket = connect(Number(port), '127.0.0.1');
    const raw = ids.map((id, i) => `GET /users/${'p'.repeat(i * 50)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Request-Id: ${id}\r\n\r\n`).join('');
    socket.write(raw);
    const received = await new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        if (responseLengths(data).length === ids.length) {
          socket.destroy();
          resolve(data);
        }
      });
    });
    const lengths = responseLengths(received);
    for (const [i, id] of ids.entries()) {
      expect(await stack.auditEvent(id), id).to.include({ status: 200, bytes_out: lengths[i] });
    }
  });
});

/** The byte length of each complete HTTP/1.1 response in `data` (Content-Length or chunked). */
function responseLengths(data: string): number[] {
  const lengths: number[] = [];
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd === -1) return lengths;
    const head = data.slice(at, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    let end: number;
    if (length !== undefined) end = headEnd + 4 + Number(length);
    else {
      // Chunked: the body ends with the last chunk `0\r\n\r\n` (no trailers from this upstream).
      const last = data.indexOf('\r\n0\r\n\r\n', headEnd + 2);
      end = last === -1 ? Infinity : last + 7;
    }
    if (end > data.length) return lengths;
    lengths.push(end - at);
    at = end;
  }
}
