/**
 * The most the full stack could serve on this machine if each of its parts cost no more than it
 * does measured alone in the same run: proxying as much as the bare proxy, a decision as much as
 * the sidecar alone, an event as much as the audit pipeline alone, plus the upstream and the load
 * client. Every process shares the same cores, and the gateway, one process, cannot use more than
 * one. Optimistic by construction (whatever the gateway does besides proxying counts as free,
 * and parts measured alone batch better), so a ceiling under a target puts the target out of
 * reach on this machine, whatever the code.
 */
export interface Ceiling {
  /** CPU µs per request of every part, summed. */
  usPerRequest: number;
  requestsPerSecond: number;
}

/** `parts` are CPU µs per request; `proxyUs` is the part the gateway's own process must spend. */
export function throughputCeiling(parts: Record<string, number>, proxyUs: number, cores: number): Ceiling {
  const usPerRequest = Object.values(parts).reduce((sum, us) => sum + us, 0);
  return { usPerRequest, requestsPerSecond: Math.min((cores * 1e6) / usPerRequest, 1e6 / proxyUs) };
}
