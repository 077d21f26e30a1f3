/**
 * The client's address: the TCP peer, unless the peer is one of `gateway.trusted_proxies` (a
 * balancer in front). Then the forwarding header those proxies set (`gateway.forwarded_header`,
 * X-Forwarded-For by default, or RFC 7239 Forwarded `for=`) is read from the right: each trusted
 * hop is skipped and the first untrusted address is the client. A hop that is not an address
 * (`unknown`, an obfuscated name, garbage) ends the walk at the last trusted one, the nearest
 * proxy that vouched for the request. Only the configured header is read: a client can write the
 * other one, which the proxies pass on untouched.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../common/cidr.js';
import { peerAddress } from './peer-address.js';

export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

/** An address of a forwarding header's hop, without port, brackets or quotes; IPv4-mapped as IPv4. */
function hopAddress(raw: string): string | undefined {
  let text = raw.trim().replace(/^"|"$/g, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^[\d.]+:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  if (text.startsWith('::ffff:') && isIP(text.slice(7)) === 4) text = text.slice(7);
  return isIP(text) === 0 ? undefined : text;
}

/** The hops a header lists, left (client side) to right (nearest proxy). */
function hops(req: IncomingMessage, header: ForwardedHeader): string[] {
  const value = req.headers[header];
  if (typeof value !== 'string' || value === '') return [];
  if (header === 'x-forwarded-for') return value.split(',');
  // Forwarded: for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"
  const found: string[] = [];
  for (const element of value.split(',')) {
    const pair = element.split(';').find((p) => p.trim().toLowerCase().startsWith('for='));
    found.push(pair ? pair.trim().slice(4) : '');
  }
  return found;
}

export class ClientAddress {
  private readonly trusted: BlockList | undefined;

  constructor(trustedProxies: readonly string[], private readonly header: ForwardedHeader = 'x-forwarded-for') {
    if (trustedProxies.length === 0) return;
    this.trusted = new BlockList();
    for (const cidr of trustedProxies) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new Error(`not an address or CIDR range: ${cidr}`);
      this.trusted.addSubnet(...parsed);
    }
  }

  of(req: IncomingMessage): string {
    const peer = peerAddress(req.socket);
    if (!this.trusted || !this.isTrusted(peer)) return peer;
    const list = hops(req, this.header);
    let client = peer;
    for (let i = list.length - 1; i >= 0; i--) {
      const hop = hopAddress(list[i]!);
      if (hop === undefined) break;
      client = hop;
      if (!this.isTrusted(hop)) break;
    }
    return client;
  }

  private isTrusted(address: string): boolean {
    return this.trusted!.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}
