/**
 * How long a CheckBatch waited between the gateway sending it and this process reading it. The
 * two monotonic clocks have an unknown offset, but `read - sent` is that offset plus the wait;
 * the smallest value a stream has seen is the offset plus the shortest wait, so the excess over
 * it is how much longer this batch waited (in the sidecar's socket buffer while it was stopped,
 * blocked or starved of CPU). The minimum is taken over two rotating windows of WINDOW_MS, so the
 * clocks' drift (ppm) never adds up.
 */
const WINDOW_MS = 10_000;

export class BatchAge {
  private previousMin = Infinity;
  private currentMin = Infinity;
  private windowStart = -Infinity;

  /** The batch's extra wait in ms (0 when it waited no longer than the quickest one, or `sentMs` is 0). */
  ageMs(sentMs: number, readMs = performance.now()): number {
    if (!(sentMs > 0)) return 0;
    if (readMs - this.windowStart > WINDOW_MS) {
      this.previousMin = this.currentMin;
      this.currentMin = Infinity;
      this.windowStart = readMs;
    }
    const seen = readMs - sentMs;
    if (seen < this.currentMin) this.currentMin = seen;
    return seen - Math.min(this.previousMin, this.currentMin);
  }
}
