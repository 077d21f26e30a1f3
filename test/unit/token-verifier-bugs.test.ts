import { expect } from 'chai';
import { parseConfig } from '../../common/config/load.js';
import { loadIssuerKeys } from '../../auth-sidecar/jwt/issuer-keys.js';
import { TokenVerifier } from '../../auth-sidecar/jwt/verifier.js';

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const config = parseConfig(JSON.stringify({ issuers: [{ name: 'local', iss: 'local-issuer', algorithms: ['HS256'], secret_env: 'S' }], routes: [{ name: 'u', paths: ['/u'], upstream: 'http://127.0.0.1:1' }] }), 'x', {});
const verifier = new TokenVerifier(loadIssuerKeys(config.issuers, 'x', { S: 'x'.repeat(32) }), () => 1_750_000_000);

describe('token verifier (bug probes)', () => {
  it('rejects a JWT whose payload is JSON null as malformed', () => {
    expect(verifier.verify(`${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url('null')}.c2ln`)).to.deep.equal({ ok: false, detail: 'malformed' });
  });
  it('rejects a typ JWT token whose payload is not JSON as malformed', () => {
    expect(verifier.verify(`${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url('not json')}.c2ln`)).to.deep.equal({ ok: false, detail: 'malformed' });
  });
});
