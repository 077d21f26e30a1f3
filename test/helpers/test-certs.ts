/**
 * A private CA and certificates made with the openssl CLI for TLS tests: a server certificate
 * for 127.0.0.1 and localhost, a client certificate (mTLS) signed by the same CA, and a client
 * certificate of another CA (the one a sidecar must refuse).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  rogueClientCert: string;
  rogueClientKey: string;
}

const openssl = (dir: string, ...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

function authority(dir: string, name: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
}

/** A key and a certificate `name` signed by `ca`, for a server (SANs 127.0.0.1, localhost) or a client. */
export function issue(dir: string, ca: string, name: string, kind: 'server' | 'client', serial = Date.now()): void {
  const ext = kind === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth' : 'extendedKeyUsage=clientAuth';
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', String(serial), '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
}

export function makeCertificates(dir: string): TestCertificates {
  authority(dir, 'ca');
  authority(dir, 'rogue-ca');
  issue(dir, 'ca', 'server', 'server');
  issue(dir, 'ca', 'client', 'client');
  issue(dir, 'rogue-ca', 'rogue-client', 'client');
  const path = (name: string) => join(dir, name);
  return {
    dir,
    ca: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    rogueClientCert: path('rogue-client.pem'),
    rogueClientKey: path('rogue-client.key'),
  };
}

export const pem = (path: string): Buffer => readFileSync(path);
