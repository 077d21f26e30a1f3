/**
 * TLS through the built processes, with a CA and certificates the test makes (openssl): HTTPS on
 * the gateway with plain HTTP redirected (audited), the TLS floor, a renewed certificate served
 * without a restart, mutual TLS between gateway and sidecar (a client certificate of another CA,
 * or none, refused), and the worker's query API over HTTPS with a TLS 1.3 floor.
 */
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { loadHealthProto } from '../../common/proto.js';
import { eventually, freePort } from '../helpers/net.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { issue, makeCertificates, pem, type TestCertificates } from '../helpers/test-certs.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}, maxVersion?: 'TLSv1.2'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers, ...(maxVersion ? { maxVersion } : {}) }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The certificate a TLS server presents now. */
function servedCertificate(port: number, ca: Buffer): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('TLS: HTTPS, redirect, renewal, mutual TLS to the sidecar, the worker API', function () {
  this.timeout(120_000);
  let stack: RunningStack;
  let certs: TestCertificates;
  let httpsPort: number;

  before(async () => {
    certs = makeCertificates(mkdtempSync(join(tmpdir(), 'gw-tls-')));
    httpsPort = await freePort();
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}" }
gateway:
  tls: { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", plain_http: redirect }
  sidecar_tls: { ca_file: "${certs.ca}", cert_file: "${certs.clientCert}", key_file: "${certs.clientKey}" }
sidecar:
  tls: { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", client_ca_file: "${certs.ca}" }
audit:
  api_tls: { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", min_version: TLSv1.3 }
`,
      { GATEWAY_HTTPS_PORT: String(httpsPort) },
    );
  });

  after(async () => {
    await stack?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const auditUrl = () => stack.auditUrl.replace('http://', 'https://');
  const auditEvent = async (requestId: string) =>
    eventually(async () => {
      const res = await httpsGet(`${auditUrl()}/v1/events?request_id=${requestId}`, pem(certs.ca), { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` });
      const { events } = JSON.parse(res.body) as { events: Record<string, unknown>[] };
      return events[0];
    }, 20_000, `the audit event of ${requestId}`);

  it('serves HTTPS (TLS 1.2 accepted) through the mutually authenticated sidecar, and tells the upstream https', async () => {
    const token = stack.token({ sub: 'secure' });
    const res = await httpsGet(`https://127.0.0.1:${httpsPort}/users/1`, pem(certs.ca), { Authorization: `Bearer ${token}`, 'X-Request-Id': 'tls-ok-1' }, 'TLSv1.2');
    expect(res.status).to.equal(200);
    expect(stack.upstream.find('tls-ok-1')?.headers['x-forwarded-proto']).to.equal('https');
    // The gateway's own answers over HTTPS say so for a year; proxied ones are the upstream's.
    expect(res.headers['strict-transport-security']).to.equal(undefined);
    expect((await httpsGet(`https://127.0.0.1:${httpsPort}/nowhere`, pem(certs.ca))).headers['strict-transport-security']).to.equal('max-age=31536000');
    expect(await auditEvent('tls-ok-1')).to.include({ decision: 'allow', status: 200 });
  });

  it('redirects plain HTTP with 308 to the same path and query on https, audited https_required', async () => {
    const res = await fetch(`${stack.gatewayUrl}/users/a/../b?x=1`, { redirect: 'manual', headers: { 'X-Request-Id': 'tls-redirect-1' } });
    expect(res.status).to.equal(308);
    expect(res.headers.get('strict-transport-security')).to.equal(null);
    expect(res.headers.get('location')).to.equal(`https://127.0.0.1:${httpsPort}/users/b?x=1`);
    expect(await res.json()).to.include({ reason: 'https_required' });
    expect(await auditEvent('tls-redirect-1')).to.include({ decision: 'deny', reason: 'https_required', status: 308 });
  });

  it('serves a renewed certificate without a restart once its files are replaced', async () => {
    const before = await servedCertificate(httpsPort, pem(certs.ca));
    // Renewed the way certbot does it: new files written beside, then renamed over the old ones.
    issue(certs.dir, 'ca', 'renewed', 'server', 4242);
    renameSync(join(certs.dir, 'renewed.key'), certs.serverKey);
    renameSync(join(certs.dir, 'renewed.pem'), certs.serverCert);
    const after = await eventually(async () => {
      const served = await servedCertificate(httpsPort, pem(certs.ca));
      return served.fingerprint256 !== before.fingerprint256 ? served : undefined;
    }, 10_000, 'the renewed certificate to be served');
    expect(after.serialNumber.toLowerCase()).to.equal((4242).toString(16).padStart(4, '0').toLowerCase());
    expect((await httpsGet(`https://127.0.0.1:${httpsPort}/users/1`, pem(certs.ca), { Authorization: `Bearer ${stack.token()}` })).status).to.equal(200);
  });

  it('the sidecar refuses a client certificate of another CA, and a client without one; its own CA\'s passes', async () => {
    const { Health } = loadHealthProto().grpc.health.v1;
    const ask = (credentials: grpc.ChannelCredentials): Promise<string> =>
      new Promise((resolve) => {
        const client = new Health(stack.sidecarAddress, credentials);
        client.check({ service: '' }, { deadline: Date.now() + 3_000 }, (err, res) => {
          client.close();
          // The loader gives enums as numbers: 1 is SERVING.
          resolve(err ? `error ${grpc.status[err.code]}` : (res?.status as unknown) === 1 ? 'SERVING' : String(res?.status));
        });
      });
    expect(await ask(grpc.credentials.createSsl(pem(certs.ca), pem(certs.clientKey), pem(certs.clientCert)))).to.equal('SERVING');
    expect(await ask(grpc.credentials.createSsl(pem(certs.ca), pem(certs.rogueClientKey), pem(certs.rogueClientCert)))).to.equal('error UNAVAILABLE');
    expect(await ask(grpc.credentials.createSsl(pem(certs.ca)))).to.equal('error UNAVAILABLE');
    expect(await ask(grpc.credentials.createInsecure())).to.equal('error UNAVAILABLE');
  });

  it('serves the worker query API over HTTPS with its own floor (TLS 1.3): a TLS 1.2 client is refused', async () => {
    const health = await httpsGet(`${auditUrl()}/healthz`, pem(certs.ca));
    expect(health.status).to.equal(200);
    const refused = await httpsGet(`${auditUrl()}/healthz`, pem(certs.ca), {}, 'TLSv1.2').then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).to.match(/^(EPROTO|ECONNRESET|ERR_SSL_.*)$/);
  });
});
