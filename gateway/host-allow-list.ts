/**
 * `gateway.allowed_hosts`: the Host values the gateway serves. An entry with a port matches that
 * host and port; an entry without one matches the host on any port (and without a port).
 * Names compare case-insensitively. Requests for other hosts (or without Host) are refused with
 * 421 misdirected_request, before routing.
 */
export class HostAllowList {
  private constructor(
    /** Every entry, lower-case. */
    private readonly exact: ReadonlySet<string>,
    /** The entries without a port. */
    private readonly anyPort: ReadonlySet<string>,
  ) {}

  /** Undefined for an empty list: any Host is served, and the handler checks nothing. */
  static from(entries: readonly string[]): HostAllowList | undefined {
    if (entries.length === 0) return undefined;
    const lower = entries.map((e) => e.toLowerCase());
    return new HostAllowList(new Set(lower), new Set(lower.filter((e) => portAt(e) === -1)));
  }

  allows(host: string | undefined): boolean {
    if (host === undefined) return false;
    const value = host.toLowerCase();
    if (this.exact.has(value)) return true;
    const colon = portAt(value);
    return colon !== -1 && this.anyPort.has(value.slice(0, colon));
  }
}

/** Index of the `:` before a port (`[::1]:8080` has one, `[::1]` has none), else -1. */
function portAt(host: string): number {
  const colon = host.lastIndexOf(':');
  return colon > host.lastIndexOf(']') ? colon : -1;
}
