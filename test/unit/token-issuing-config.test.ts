/** `token_issuing`, its issuer (sidecar_keys) and `serve: token_endpoints` routes: what the schema refuses, naming the key. */
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import { ownIssuerOf } from '../../common/config/schema.js';

const ISSUER = '{ name: local, iss: "http://gw.test", algorithms: [ES256], sidecar_keys: true }';
const ROUTE = '{ name: auth, paths: [/auth], serve: token_endpoints, auth: none }';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'test.yml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('token_issuing config', () => {
  it('reads the defaults: ES256, 15 min access tokens, 7 day refresh tokens, cost 12, throttles 5 per username and 20 per ip in 15 min', () => {
    const config = parseConfig(`issuers: [${ISSUER}]\ntoken_issuing: {}\nroutes: [${ROUTE}]`, 'test.yml', {});
    const own = ownIssuerOf(config)!;
    expect(own.issuer.name).to.equal('local');
    expect(own.issuing).to.deep.include({ algorithm: 'ES256', access_token_ttl: 900, refresh_token_ttl: 604800, session_max_lifetime: 2592000, bcrypt_cost: 12 });
    expect(own.issuing.login_throttle).to.deep.equal({ per_username: { failures: 5, window: 900 }, per_ip: { failures: 20, window: 900 } });
    expect(own.issuing.refresh_cookie).to.equal(undefined);
  });

  it('refuses token_issuing without an issuer of its own, and such an issuer without token_issuing', () => {
    expect(problems(`issuers: []\ntoken_issuing: {}\nroutes: [${ROUTE}]`)).to.include('token_issuing: needs an issuer with sidecar_keys: true (the issuer of the tokens it signs)');
    expect(problems(`issuers: [${ISSUER}]\nroutes: [{ name: r, paths: [/r], upstream: "http://127.0.0.1:1" }]`)).to.include('issuers.0.sidecar_keys: needs a token_issuing section');
  });

  it('refuses an own issuer with a key source, an algorithm the sidecar cannot sign with, or an algorithm outside its list', () => {
    expect(problems(`issuers: [{ name: local, iss: x, algorithms: [ES256], sidecar_keys: true, secret_env: S }]\ntoken_issuing: {}\nroutes: [${ROUTE}]`)).to.include(
      'issuers.0.sidecar_keys: sidecar_keys replaces secret_env: give one or the other',
    );
    expect(problems(`issuers: [{ name: local, iss: x, algorithms: [RS256], sidecar_keys: true }]\ntoken_issuing: {}\nroutes: [${ROUTE}]`)).to.include('issuers.0.algorithms.0: the sidecar signs with ES256 or EdDSA, not RS256');
    expect(problems(`issuers: [${ISSUER}]\ntoken_issuing: { algorithm: EdDSA }\nroutes: [${ROUTE}]`)).to.include("token_issuing.algorithm: is not among issuer local's algorithms");
  });

  it('refuses an access token lifetime over the issuer max_lifetime, a bcrypt cost under 10 and a bad cookie name', () => {
    const out = problems(`issuers: [{ name: local, iss: x, algorithms: [ES256], sidecar_keys: true, max_lifetime: 10m }]\ntoken_issuing: { access_token_ttl: 1h, bcrypt_cost: 8, refresh_cookie: { name: "a b" } }\nroutes: [${ROUTE}]`);
    expect(out).to.include("token_issuing.access_token_ttl: exceeds issuer local's max_lifetime (600 s)");
    expect(out.some((p) => p.startsWith('token_issuing.bcrypt_cost:'))).to.equal(true);
    expect(out.some((p) => p.startsWith('token_issuing.refresh_cookie.name: must be a cookie name'))).to.equal(true);
  });

  it('refuses a token endpoints route without token_issuing, with auth, or with an upstream as well', () => {
    expect(problems(`routes: [${ROUTE}]`)).to.include('routes.0.serve: token_endpoints needs a token_issuing section');
    expect(problems(`issuers: [${ISSUER}]\ntoken_issuing: {}\nroutes: [{ name: auth, paths: [/auth], serve: token_endpoints }]`)).to.include(
      'routes.0.auth: the token endpoints check credentials themselves: say auth: none',
    );
    expect(problems(`issuers: [${ISSUER}]\ntoken_issuing: {}\nroutes: [{ name: auth, paths: [/auth], serve: token_endpoints, upstream: "http://127.0.0.1:1", auth: none }]`)).to.include(
      'routes.0.upstream: a route needs exactly one of upstream, serve',
    );
    expect(problems(`routes: [{ name: r, paths: [/r] }]`)).to.include('routes.0.upstream: a route needs exactly one of upstream, serve');
  });
});
