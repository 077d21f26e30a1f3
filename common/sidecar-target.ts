/**
 * SIDECAR_ADDR: where the gateway finds its auth sidecars. Three forms:
 * - `host:port`: one sidecar (the default, `127.0.0.1:50051`);
 * - `host:port,host:port,...`: a fixed list;
 * - `dns:///name:port`: every address the name resolves to, looked up again every few seconds,
 *   so sidecars scaled up or down (a compose service name) are picked up and dropped.
 */
import { lookup } from 'node:dns/promises';

export type SidecarTarget = { kind: 'static'; addresses: string[] } | { kind: 'dns'; host: string; port: number };

const HOST_PORT = /^([^\s:,/]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/** Parses SIDECAR_ADDR; throws an Error naming what is wrong. */
export function parseSidecarTarget(text: string): SidecarTarget {
  const dns = /^dns:\/\/\/(.+)$/.exec(text);
  if (dns) {
    const m = HOST_PORT.exec(dns[1]!);
    if (!m || !validPort(m[2]!)) throw new Error(`dns:///${dns[1]} must be dns:///name:port`);
    return { kind: 'dns', host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  const addresses = text.split(',').map((a) => a.trim());
  for (const address of addresses) {
    const m = HOST_PORT.exec(address);
    if (!m || !validPort(m[2]!)) throw new Error(`${JSON.stringify(address)} must be host:port`);
  }
  if (new Set(addresses).size !== addresses.length) throw new Error('lists an address twice');
  return { kind: 'static', addresses };
}

function validPort(text: string): boolean {
  const port = Number(text);
  return port >= 1 && port <= 65_535;
}

/** The target's addresses now (`host:port`, IPv6 in brackets), sorted; a dns target resolves its name. */
export async function resolveSidecars(target: SidecarTarget): Promise<string[]> {
  if (target.kind === 'static') return target.addresses;
  const found = await lookup(target.host, { all: true });
  const addresses = found.map((a) => (a.family === 6 ? `[${a.address}]:${target.port}` : `${a.address}:${target.port}`));
  return [...new Set(addresses)].sort();
}
