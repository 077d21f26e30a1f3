import { expect } from 'chai';
import { canonicalIp } from '../../common/ip-address.js';

describe('canonicalIp', () => {
  it('spells every form of one IPv6 address the same way (RFC 5952: lower case, compressed)', () => {
    for (const text of ['2001:DB8::1', '2001:db8:0:0:0:0:0:1', '2001:0db8::0001', '2001:db8::1']) expect(canonicalIp(text), text).to.equal('2001:db8::1');
    expect(canonicalIp('0:0:0:0:0:0:0:1')).to.equal('::1');
  });

  it('turns an IPv4-mapped IPv6 address into its IPv4 address', () => {
    expect(canonicalIp('::ffff:1.2.3.4')).to.equal('1.2.3.4');
    expect(canonicalIp('::FFFF:0102:0304')).to.equal('1.2.3.4');
    expect(canonicalIp('::ffff:127.0.0.1')).to.equal('127.0.0.1');
  });

  it('keeps an IPv4 address as it is', () => {
    expect(canonicalIp('203.0.113.7')).to.equal('203.0.113.7');
  });

  it('refuses what is not an address', () => {
    for (const text of ['', 'localhost', '300.1.1.1', '1.2.3', '01.2.3.4', '2001:db8::1::2', 'fe80::1%eth0', '[::1]', ' 1.2.3.4']) {
      expect(canonicalIp(text), text).to.equal(undefined);
    }
  });
});
