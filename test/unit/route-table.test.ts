import { expect } from 'chai';
import { parseConfig } from '../../common/config/load.js';
import type { RouteConfig } from '../../common/config/schema.js';
import { RouteTable } from '../../gateway/route-table.js';
import { upstreamPath } from '../../gateway/upstream-path.js';

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

/** Routes from YAML flow mappings, each given an upstream. */
function tableOf(...routes: string[]): RouteTable {
  const config = parseConfig(`routes:\n${routes.map((r) => `  - { upstream: "http://127.0.0.1:3001", ${r} }`).join('\n')}`, 'route-table-test.yml', {});
  return new RouteTable(config.routes);
}

describe('route table: hosts, methods and precedence', () => {
  it('prefers an exact host, then a wildcard, then a route without hosts, before the longest path', () => {
    const routes = tableOf(
      'name: any, paths: [/api/v2]',
      'name: wild, paths: [/api], hosts: ["*.example.com"]',
      'name: exact, paths: [/], hosts: [api.example.com]',
    );
    expect(routes.resolve('/api/v2/x', 'api.example.com', 'GET')?.route.name).to.equal('exact');
    expect(routes.resolve('/api/v2/x', 'API.Example.com:8443', 'GET')?.route.name).to.equal('exact');
    expect(routes.resolve('/api/v2/x', 'shop.example.com', 'GET')?.route.name).to.equal('wild');
    expect(routes.resolve('/api/v2/x', 'a.b.example.com', 'GET')?.route.name).to.equal('wild');
    // A Host naming no route's hosts falls to the routes without hosts.
    expect(routes.resolve('/api/v2/x', 'other.test', 'GET')?.route.name).to.equal('any');
    expect(routes.resolve('/api/x', 'other.test', 'GET')).to.equal(undefined);
    // The wildcard needs a label before the domain.
    expect(routes.resolve('/api/x', 'example.com', 'GET')).to.equal(undefined);
  });

  it('passes a route over for a method it does not admit, to the next match; with none left, names the methods for a 405', () => {
    const routes = tableOf('name: read, paths: [/items], methods: [GET, HEAD]', 'name: write, paths: [/items], methods: [POST]', 'name: root, paths: [/], methods: [GET]');
    expect(routes.resolve('/items/1', 'h', 'GET')?.route.name).to.equal('read');
    expect(routes.resolve('/items/1', 'h', 'POST')?.route.name).to.equal('write');
    expect(routes.resolve('/other', 'h', 'GET')?.route.name).to.equal('root');
    expect(routes.resolve('/items/1', 'h', 'DELETE')).to.equal(undefined);
    expect(routes.allowedMethods('/items/1', 'h')).to.deep.equal(['GET', 'HEAD', 'POST']);
    expect(routes.resolve('/items/1', 'h', 'get')).to.equal(undefined); // methods are case-sensitive (RFC 9110 §9.1)
  });

  it('returns the matched prefix, for strip_path and rewrite', () => {
    const routes = tableOf('name: search, paths: [/search, /find/]');
    expect(routes.resolve('/find/x', undefined, 'GET')).to.deep.include({ prefix: '/find' });
  });

  it('refuses two routes on one path unless their hosts differ or their methods do not overlap', () => {
    const problems = (...routes: string[]) => {
      try {
        tableOf(...routes);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(problems('name: a, paths: [/x], methods: [GET]', 'name: b, paths: [/x], methods: [POST]')).to.equal('');
    expect(problems('name: a, paths: [/x], hosts: [a.test]', 'name: b, paths: [/x], hosts: [b.test]')).to.equal('');
    expect(problems('name: a, paths: [/x], hosts: [a.test]', 'name: b, paths: [/x]')).to.equal('');
    expect(problems('name: a, paths: [/x], methods: [GET, PUT]', 'name: b, paths: [/x], methods: [PUT]')).to.include('routes.1.paths.0: path /x is already served by route a for one of these methods');
    expect(problems('name: a, paths: [/x]', 'name: b, paths: [/x], methods: [PUT]')).to.include('already served by route a');
    expect(problems('name: a, paths: [/x], strip_path: true, rewrite: /y')).to.include('routes.0.rewrite: give strip_path or rewrite, not both');
    expect(problems('name: a, paths: [/x], hosts: ["api.test:8080"]')).to.include('routes.0.hosts.0: must be a host name or *.<domain>, without a port');
  });
});

describe('upstream path', () => {
  const match = (route: string, path: string) => {
    const found = tableOf(route).resolve(path, undefined, 'GET')!;
    return upstreamPath(found, path);
  };

  it('keeps the path by default, strips the prefix with strip_path, replaces it with rewrite', () => {
    expect(match('name: s, paths: [/search]', '/search/a')).to.equal('/search/a');
    expect(match('name: s, paths: [/search], strip_path: true', '/search/a/b')).to.equal('/a/b');
    expect(match('name: s, paths: [/search], strip_path: true', '/search')).to.equal('/');
    expect(match('name: s, paths: [/search], strip_path: true', '/search/')).to.equal('/');
    expect(match('name: s, paths: [/search], rewrite: /v2/find', '/search/a')).to.equal('/v2/find/a');
    expect(match('name: s, paths: [/search], rewrite: /v2/find/', '/search')).to.equal('/v2/find');
    expect(match('name: s, paths: [/search], rewrite: /', '/search/a')).to.equal('/a');
    expect(match('name: s, paths: [/], rewrite: /base', '/a')).to.equal('/base/a');
  });

  it('sends the normalized, canonically encoded path: what the sidecar authorized', () => {
    // normalizeTarget has already decoded unreserved characters and upper-cased the rest.
    expect(match('name: s, paths: [/search], strip_path: true', '/search/caf%C3%A9')).to.equal('/caf%C3%A9');
  });
});
