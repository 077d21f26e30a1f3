import { expect } from 'chai';
import { HostAllowList } from '../../gateway/host-allow-list.js';

describe('the Host allow-list', () => {
  const list = HostAllowList.from(['api.example.test', 'Internal.Example.Test:8443', '[::1]', '[2001:db8::1]:9000'])!;

  it('is absent when no host is listed, so any Host is served', () => {
    expect(HostAllowList.from([])).to.equal(undefined);
  });

  it('matches a name without a port on any port, case-insensitively', () => {
    expect(['api.example.test', 'API.example.TEST', 'api.example.test:8080'].map((h) => list.allows(h))).to.deep.equal([true, true, true]);
  });

  it('matches a name with a port on that port only', () => {
    expect(['internal.example.test:8443', 'internal.example.test:8444', 'internal.example.test'].map((h) => list.allows(h))).to.deep.equal([true, false, false]);
  });

  it('reads the port of a bracketed IPv6 address after its bracket', () => {
    expect(['[::1]', '[::1]:8080', '[2001:db8::1]:9000', '[2001:db8::1]:9001', '[2001:db8::1]'].map((h) => list.allows(h))).to.deep.equal([true, true, true, false, false]);
  });

  it('refuses other hosts, look-alikes and a missing Host', () => {
    expect(['evil.example', 'api.example.test.evil', 'xapi.example.test', 'api.example.test.', '', undefined].map((h) => list.allows(h))).to.deep.equal([false, false, false, false, false, false]);
  });
});
