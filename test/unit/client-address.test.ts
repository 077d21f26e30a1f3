/** gateway/client-address.ts: which address is the client's, for every shape of forwarding header. */
import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import { parseConfig } from '../../common/config/load.js';
import { ClientAddress } from '../../gateway/client-address.js';

const req = (peer: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress: peer }, headers }) as unknown as IncomingMessage;

describe('client address', () => {
  const behind = new ClientAddress(['10.0.0.0/8', '2001:db8::/32']);

  it('is the TCP peer when no proxy is trusted, whatever the headers say', () => {
    expect(new ClientAddress([]).of(req('198.51.100.1', { 'x-forwarded-for': '6.6.6.6' }))).to.equal('198.51.100.1');
    expect(new ClientAddress([]).of(req('::ffff:198.51.100.1'))).to.equal('198.51.100.1');
  });

  it('is the TCP peer when the peer is not trusted', () => {
    expect(behind.of(req('198.51.100.1', { 'x-forwarded-for': '6.6.6.6' }))).to.equal('198.51.100.1');
  });

  it('takes the right-most untrusted hop of X-Forwarded-For behind trusted proxies', () => {
    expect(behind.of(req('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3' }))).to.equal('203.0.113.9');
    expect(behind.of(req('::ffff:10.0.0.2', { 'x-forwarded-for': '203.0.113.9' }))).to.equal('203.0.113.9');
    expect(behind.of(req('2001:db8::1', { 'x-forwarded-for': '2001:db8::7, 2001:db9::5' }))).to.equal('2001:db9::5');
  });

  it('keeps the left-most hop when every hop is trusted, and the peer when the header is absent', () => {
    expect(behind.of(req('10.0.0.2', { 'x-forwarded-for': '10.0.0.9, 10.0.0.8' }))).to.equal('10.0.0.9');
    expect(behind.of(req('10.0.0.2'))).to.equal('10.0.0.2');
  });

  it('stops at a hop that is not an address, at the nearest trusted proxy', () => {
    expect(behind.of(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.9, evil, 10.0.0.3' }))).to.equal('10.0.0.3');
    expect(behind.of(req('10.0.0.2', { 'x-forwarded-for': '' }))).to.equal('10.0.0.2');
    expect(behind.of(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.9:1234' }))).to.equal('203.0.113.9');
  });

  it('reads RFC 7239 Forwarded for= (quoted, bracketed, with ports) when configured, and only then', () => {
    const forwarded = new ClientAddress(['10.0.0.0/8'], 'forwarded');
    const headers = { forwarded: 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.7', 'x-forwarded-for': '5.5.5.5' };
    expect(forwarded.of(req('10.0.0.2', headers))).to.equal('2001:db8:cafe::17');
    expect(forwarded.of(req('10.0.0.2', { forwarded: 'for=unknown, for=10.0.0.7' }))).to.equal('10.0.0.7');
    expect(behind.of(req('10.0.0.2', headers))).to.equal('5.5.5.5');
  });

  it('is configured by gateway.trusted_proxies (a list or one comma-separated string) and refuses what is not a range', () => {
    const routes = 'routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\n';
    const gateway = (yaml: string) => parseConfig(`${routes}${yaml}`, 'gw.yml', {}).gateway;
    expect(gateway('').trusted_proxies).to.deep.equal([]);
    expect(gateway('gateway: { trusted_proxies: "172.30.0.10, 10.0.0.0/8" }\n').trusted_proxies).to.deep.equal(['172.30.0.10', '10.0.0.0/8']);
    expect(gateway('gateway: { trusted_proxies: [::1/128], forwarded_header: forwarded }\n')).to.deep.include({ trusted_proxies: ['::1/128'], forwarded_header: 'forwarded' });
    expect(() => gateway('gateway: { trusted_proxies: [10.0.0.0/33] }\n')).to.throw('gateway.trusted_proxies.0: must be an address or a CIDR range, e.g. 10.0.0.0/8');
    expect(() => gateway('gateway: { trusted_proxies: "balancer" }\n')).to.throw('gateway.trusted_proxies.0: must be an address or a CIDR range');
  });
});
