import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import type { RouteConfig } from '../../common/config/schema.js';
import { tokenSource } from '../../gateway/token-source.js';

const routeWith = (auth: unknown): Record<string, unknown> => ({ name: 'r', paths: ['/r'], upstream: 'http://127.0.0.1:1', auth });
function parsedRoute(auth: unknown): RouteConfig {
  return parseConfig(JSON.stringify({ routes: [routeWith(auth)] }), 'auth-test.yml', {}).routes[0]!;
}
function problems(auth: unknown): string[] {
  try {
    parsedRoute(auth);
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
}

describe('route auth config', () => {
  it('reads the short form and the object form to one shape', () => {
    expect(parsedRoute('optional').auth).to.deep.equal({ mode: 'optional', required_scopes: [], token: {} });
    expect(parsedRoute(undefined).auth).to.deep.equal({ mode: 'required', required_scopes: [], token: {} });
    expect(parsedRoute({ required_scopes: ['a:read'], token: { cookie: 'at' } }).auth).to.deep.equal({ mode: 'required', required_scopes: ['a:read'], token: { cookie: 'at' } });
  });

  it('refuses scopes without a required token, a token source on a route without auth, and bad names', () => {
    expect(problems({ mode: 'optional', required_scopes: ['a'] })).to.deep.equal(['routes.0.auth.required_scopes: required_scopes needs mode required']);
    expect(problems({ mode: 'none', token: { query: 't' } })).to.deep.equal(['routes.0.auth.token: a route without authentication reads no token']);
    expect(problems({ token: { cookie: 'a b' } })[0]).to.match(/^routes\.0\.auth/);
    expect(problems({ required_scopes: ['has space'] })[0]).to.match(/^routes\.0\.auth/);
  });
});

describe('token source', () => {
  const request = (headers: Record<string, string>, rawAuthorizations = headers['authorization'] ? 1 : 0): IncomingMessage =>
    ({ headers, rawHeaders: Array.from({ length: rawAuthorizations }, () => ['Authorization', headers['authorization'] ?? '']).flat() }) as unknown as IncomingMessage;
  const route = parsedRoute({ token: { cookie: 'gw_at', query: 'access_token' } });

  it('passes a plain route through untouched', () => {
    const plain = parsedRoute('required');
    expect(tokenSource(request({ authorization: 'Bearer x' }), plain, '?access_token=y')).to.deep.equal({ authorization: 'Bearer x', count: 1, search: '?access_token=y' });
  });

  it('takes the header first, then the cookie, then the parameter, and strips the parameter in every case', () => {
    expect(tokenSource(request({ authorization: 'Bearer h', cookie: 'gw_at=c' }), route, '?access_token=q')).to.deep.equal({ authorization: 'Bearer h', count: 1, search: '' });
    expect(tokenSource(request({ cookie: 'x=1; gw_at="c"' }), route, '?a=1&access_token=q')).to.deep.equal({ authorization: 'Bearer c', count: 1, search: '?a=1' });
    expect(tokenSource(request({}), route, '?a=1&access%5Ftoken=q%2Bq&b')).to.deep.equal({ authorization: 'Bearer q+q', count: 1, search: '?a=1&b' });
    expect(tokenSource(request({}), route, '')).to.deep.equal({ authorization: undefined, count: 0, search: '' });
  });

  it('counts two of the chosen kind', () => {
    expect(tokenSource(request({ cookie: 'gw_at=a; gw_at=b' }), route, '').count).to.equal(2);
    expect(tokenSource(request({}), route, '?access_token=a&access_token=b').count).to.equal(2);
  });
});
