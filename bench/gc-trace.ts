/**
 * Reads V8's `--trace-gc` lines: the heap left after each mark-compact is the live heap, the
 * figure that grows if something leaks, where RSS also swings with how far the GC let the old
 * generation grow before collecting it.
 */
const MARK_COMPACT = /Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/;

export class LiveHeapTrace {
  /** MB live after each mark-compact, in order. */
  readonly afterMarkCompact: number[] = [];

  readonly onLine = (line: string): void => {
    const m = MARK_COMPACT.exec(line);
    if (m) this.afterMarkCompact.push(Number(m[1]));
  };
}
