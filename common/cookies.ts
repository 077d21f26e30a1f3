/** Every value of cookie `name` in a Cookie header (RFC 6265 §5.4: `name=value` pairs split by `;`), quotes removed. */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) values.push(pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return values;
}
