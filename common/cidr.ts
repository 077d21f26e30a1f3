/** Address ranges as the config writes them (gateway.trusted_proxies). */
import { isIP } from 'node:net';

/** `10.0.0.0/8`, `2001:db8::/32`, or one address → [address, prefix, family]; undefined when invalid. */
export function parseCidr(text: string): [string, number, 'ipv4' | 'ipv6'] | undefined {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return [address, prefix, family === 4 ? 'ipv4' : 'ipv6'];
}
