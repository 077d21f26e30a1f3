/** Runs `read` at once and then every `ms` (the timer never keeps the process alive), until stopped. */
export class Poll {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly read: () => Promise<void>,
  ) {}

  /** Resolves when the first read has ended. */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.read(), this.ms);
    this.timer.unref();
    return this.read();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
