import { expect } from 'chai';
import { parseConfig } from '../../common/config/load.js';
import type { RouteConfig } from '../../common/config/schema.js';
import { RouteTable } from '../../gateway/route-table.js';

/** Routes named after their paths, through parseConfig so they carry every default. */
function table(routes: Record<string, string[]>): RouteTable {
  const config = parseConfig(
    JSON.stringify({
      routes: Object.entries(routes).map(([name, paths]) => ({ name, paths, upstream: 'http://127.0.0.1:3001' })),
    }),
    'route-table-test.yml',
    {},
  );
  return new RouteTable(config.routes);
}

const nameOf = (route: RouteConfig | undefined): string | undefined => route?.name;

describe('route table', () => {
  it('picks the longest matching prefix whatever the order of the routes', () => {
    const routes = table({ api: ['/api'], v2: ['/api/v2'], admin: ['/api/v2/admin'] });
    expect(nameOf(routes.match('/api/v2/admin/users'))).to.equal('admin');
    expect(nameOf(routes.match('/api/v2/orders'))).to.equal('v2');
    expect(nameOf(routes.match('/api/v1/orders'))).to.equal('api');
  });

  it('matches a prefix itself and below it on a segment boundary only', () => {
    const routes = table({ users: ['/users'] });
    expect(nameOf(routes.match('/users'))).to.equal('users');
    expect(nameOf(routes.match('/users/'))).to.equal('users');
    expect(nameOf(routes.match('/users/7'))).to.equal('users');
    expect(nameOf(routes.match('/usersx'))).to.equal(undefined);
    expect(nameOf(routes.match('/user'))).to.equal(undefined);
  });

  it('matches a configured trailing-slash path without the slash', () => {
    const routes = table({ people: ['/people/'] });
    expect(nameOf(routes.match('/people'))).to.equal('people');
    expect(nameOf(routes.match('/people/9'))).to.equal('people');
    expect(nameOf(routes.match('/peoplex'))).to.equal(undefined);
  });

  it('serves every unmatched path from a / catch-all', () => {
    const routes = table({ users: ['/users'], fallback: ['/'] });
    expect(nameOf(routes.match('/users/7'))).to.equal('users');
    expect(nameOf(routes.match('/usersx'))).to.equal('fallback');
    expect(nameOf(routes.match('/'))).to.equal('fallback');
  });

  it('returns undefined when no route matches', () => {
    const routes = table({ users: ['/users'], payments: ['/payments', '/pay'] });
    expect(routes.match('/status')).to.equal(undefined);
    expect(routes.match('/')).to.equal(undefined);
    expect(nameOf(routes.match('/pay/1'))).to.equal('payments');
  });
});
