/**
 * How long this process has just been stopped or blocked (SIGSTOP, a long GC, a busy turn).
 * Requests that arrived meanwhile waited in the socket buffer, and are read on the first turn
 * after the stall, before any timer runs: a check read then is older than it looks, by up to the
 * stall's length. The check service counts its deadline from before the stall, so a check the
 * gateway already answered 503 while this process was frozen is not decided (and counted) late.
 */
export class StallClock {
  private lastTick = performance.now();
  private lastStallMs = 0;
  private lastStallEndedAt = -Infinity;

  /**
   * `tickMs`: how often the clock looks; a gap of more than `toleranceMs` past a tick is a stall.
   * `windowMs`: for this long after a stall, what is read may have arrived when it began (the
   * first turns after a freeze run overdue timers and other work before the socket is read).
   */
  constructor(private readonly tickMs = 10, private readonly toleranceMs = 50, private readonly windowMs = 100) {
    setInterval(() => this.tick(), tickMs).unref();
  }

  /**
   * How long something read at `now` may have waited unread: the stall under way, or the last
   * one when it ended within `windowMs`; 0 when the process ran on time. Pauses up to
   * `toleranceMs` (GC, a busy turn) do not count: they cost a check little of its budget.
   */
  stallMs(now = performance.now()): number {
    const ongoing = now - this.lastTick - this.tickMs;
    const recent = now - this.lastStallEndedAt <= this.windowMs ? this.lastStallMs : 0;
    return Math.max(ongoing > this.toleranceMs ? ongoing : 0, recent);
  }

  private tick(): void {
    const now = performance.now();
    const gap = now - this.lastTick - this.tickMs;
    if (gap > this.toleranceMs) {
      this.lastStallMs = gap;
      this.lastStallEndedAt = now;
    }
    this.lastTick = now;
  }
}
