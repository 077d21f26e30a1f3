import { isIP } from 'node:net';

const MAPPED_IPV4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The one spelling of an IP address that ban keys use, so `2001:DB8::1`, `2001:db8:0::1` and
 * the peer `2001:db8::1` are one address: IPv4 as is (dotted quad, no leading zeros), IPv6
 * compressed in lower case (RFC 5952), an IPv4-mapped IPv6 address as its IPv4 address.
 * Undefined when `text` is not an address (zone ids such as `fe80::1%eth0` included).
 */
export function canonicalIp(text: string): string | undefined {
  const kind = isIP(text);
  if (kind === 4) return text;
  if (kind !== 6) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = MAPPED_IPV4.exec(host);
  if (!mapped) return host;
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
