/** CorsPolicy's origin matching and preflight answers, and what the cors schema refuses. */
import { expect } from 'chai';
import { corsSchema } from '../../common/config/schema.js';
import { corsPolicies, CorsPolicy } from '../../gateway/cors/cors-policy.js';

const policy = (config: Record<string, unknown>) => new CorsPolicy(corsSchema.parse(config));

describe('CORS policy', () => {
  it('matches origins exactly (case-insensitive), by a *. subdomain pattern with its scheme and port, never by prefix or suffix tricks', () => {
    const p = policy({ origins: ['https://app.example.com', 'https://*.example.org', 'http://*.dev.test:8080'] });
    expect(p.allowOrigin('https://app.example.com')).to.equal('https://app.example.com');
    expect(p.allowOrigin('HTTPS://APP.EXAMPLE.COM')).to.equal('HTTPS://APP.EXAMPLE.COM');
    expect(p.allowOrigin('https://a.b.example.org')).to.equal('https://a.b.example.org');
    expect(p.allowOrigin('http://x.dev.test:8080')).to.equal('http://x.dev.test:8080');
    for (const origin of ['http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.net', 'https://evilapp.example.com', 'https://example.org', 'https://evil.net/.example.org', 'http://x.dev.test', 'https://a.example.org@evil.net', 'null', '']) {
      expect(p.allowOrigin(origin), origin).to.equal(undefined);
    }
  });

  it('answers * only for a policy of *, and null only when listed', () => {
    expect(policy({ origins: ['*'] }).allowOrigin('https://anyone.example')).to.equal('*');
    expect(policy({ origins: ['null'] }).allowOrigin('null')).to.equal('null');
  });

  it('refuses a preflight by origin, then method, then any header not listed', () => {
    const p = policy({ origins: ['https://a.test'], methods: ['GET', 'PUT'], allow_headers: ['Authorization'] });
    expect(p.preflight('https://b.test', 'GET', undefined)).to.deep.equal({ ok: false, detail: 'cors_origin' });
    expect(p.preflight('https://a.test', 'DELETE', undefined)).to.deep.equal({ ok: false, detail: 'cors_method' });
    expect(p.preflight('https://a.test', 'PUT', 'authorization, x-other')).to.deep.equal({ ok: false, detail: 'cors_headers' });
    expect(p.preflight('https://a.test', 'PUT', ' AUTHORIZATION ')).to.have.property('ok', true);
  });

  it('gives each route its own policy, the top-level one, or none for cors: false', () => {
    const top = corsSchema.parse({ origins: ['https://a.test'] });
    const own = corsSchema.parse({ origins: ['*'] });
    const policies = corsPolicies({ cors: top, routes: [{ name: 'inherits' }, { name: 'own', cors: own }, { name: 'off', cors: false }] });
    expect([...policies.keys()]).to.deep.equal(['inherits', 'own']);
    expect(policies.get('own')!.allowOrigin('https://x.test')).to.equal('*');
  });

  it('refuses * with credentials, a path or a bad origin, naming the key', () => {
    const issues = (config: unknown) => (corsSchema.safeParse(config).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ origins: ['*'], credentials: true })).to.deep.equal(['origins: origins * cannot go with credentials: list the origins']);
    expect(issues({ origins: ['https://a.test/path'] })).to.deep.equal(['origins.0: must be an origin like https://app.example.com (https://*.example.com for its subdomains), * or null']);
    expect(issues({ origins: ['https://*'] })).to.have.length(1);
    expect(issues({ origins: [] })).to.have.length(1);
  });
});
