/**
 * The sidecar's circuit breaker on Redis decisions. After `failures` decisions in a row timed out
 * (Redis frozen or overloaded: each one cost the caller the whole decision timeout), it opens:
 * for `openMs` no decision is sent, each is answered at once by the route's on_redis_failure.
 * Then it is half open: one decision goes through as a probe, the others are still answered at
 * once; the probe's success closes it, its failure opens it again for another `openMs`.
 */
export class CircuitBreaker {
  private failuresInARow = 0;
  /** performance.now() when it opened; undefined while closed. */
  private openedAt: number | undefined;
  private probing = false;

  constructor(
    private readonly failures: number,
    private readonly openMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): 'closed' | 'open' | 'half_open' {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt < this.openMs ? 'open' : 'half_open';
  }

  /** Whether a decision may go to Redis now; in half-open state, true once (the probe) until it is reported. */
  admits(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.failuresInARow = 0;
    this.openedAt = undefined;
    this.probing = false;
  }

  /** A decision that says nothing of Redis' health (not sent, not connected): a probe may be sent again. */
  inconclusive(): void {
    this.probing = false;
  }

  failed(): void {
    this.failuresInARow++;
    if (this.probing || this.failuresInARow >= this.failures) this.openedAt = this.now();
    this.probing = false;
  }
}
