/** TLS in the config (what the schema refuses, naming the key) and the HTTPS redirect's Location. */
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import { httpsLocation } from '../../gateway/https-redirect.js';

const ROUTES = 'routes: [{ name: r, paths: [/r], upstream: "http://127.0.0.1:1" }]';

function problems(yaml: string): string[] {
  try {
    parseConfig(`${ROUTES}\n${yaml}`, 'test.yml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('TLS config', () => {
  it('defaults the gateway to a TLS 1.2 floor and redirecting plain HTTP', () => {
    const config = parseConfig(`${ROUTES}\ngateway: { tls: { cert_file: c.pem, key_file: k.pem } }`, 'test.yml', {});
    expect(config.gateway.tls).to.deep.equal({ cert_file: 'c.pem', key_file: 'k.pem', min_version: 'TLSv1.2', plain_http: 'redirect' });
  });

  it('refuses TLS on one side of the gateway-sidecar hop only, mTLS without the gateway\'s certificate, a cert without its key, and TLS 1.1', () => {
    expect(problems('sidecar: { tls: { cert_file: c, key_file: k } }')).to.deep.equal(['gateway.sidecar_tls: the gateway and the sidecar speak TLS together: give sidecar.tls and gateway.sidecar_tls both, or neither']);
    expect(problems('gateway: { sidecar_tls: { ca_file: ca } }')).to.deep.equal(['sidecar.tls: the gateway and the sidecar speak TLS together: give sidecar.tls and gateway.sidecar_tls both, or neither']);
    expect(problems('sidecar: { tls: { cert_file: c, key_file: k, client_ca_file: ca } }\ngateway: { sidecar_tls: { ca_file: ca } }')).to.deep.equal([
      'gateway.sidecar_tls.cert_file: sidecar.tls.client_ca_file asks for mutual TLS: the gateway needs cert_file and key_file',
    ]);
    expect(problems('sidecar: { tls: { cert_file: c, key_file: k } }\ngateway: { sidecar_tls: { ca_file: ca, cert_file: c } }')).to.deep.equal(['gateway.sidecar_tls.cert_file: give cert_file and key_file together']);
    expect(problems('gateway: { tls: { cert_file: c, key_file: k, min_version: TLSv1.1 } }')[0]).to.match(/^gateway\.tls\.min_version: /);
    expect(problems('gateway: { tls: { cert_file: c, key_file: k, plain_http: maybe } }')[0]).to.match(/^gateway\.tls\.plain_http: /);
  });

  it('redirects to the same host without its port, on the HTTPS port (none for 443), keeping path and query', () => {
    expect(httpsLocation('api.example.com:8080', 8443, '/a/b?x=1')).to.equal('https://api.example.com:8443/a/b?x=1');
    expect(httpsLocation('api.example.com', 443, '/')).to.equal('https://api.example.com/');
    expect(httpsLocation('[2001:db8::1]:80', 443, '/p')).to.equal('https://[2001:db8::1]/p');
    expect(httpsLocation(undefined, 443, '/')).to.equal(undefined);
    expect(httpsLocation('evil.com/@x', 443, '/')).to.equal(undefined);
    expect(httpsLocation('a b', 443, '/')).to.equal(undefined);
  });
});
