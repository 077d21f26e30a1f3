/**
 * The frame of every process entry point: run `start`, print a clear message and exit 1 when
 * it fails (a bad variable, a bad config key), and on SIGTERM/SIGINT run the stop hooks once.
 */
export type OnStop = (hook: () => Promise<void>) => void;

export interface RunOptions {
  /** After this long, stopping gives up and exits 1 (default 10 s). */
  stopTimeoutMs?: number;
}

export function runMain(name: string, options: RunOptions, start: (onStop: OnStop) => Promise<void>): void {
  const hooks: (() => Promise<void>)[] = [];
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), options.stopTimeoutMs ?? 10_000);
    force.unref();
    for (const hook of hooks.reverse()) {
      await hook().catch((err: Error) => console.error(`${name}: while stopping on ${signal}: ${err.message}`));
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  start((hook) => hooks.push(hook)).catch((err: Error) => {
    console.error(`${name}: cannot start: ${err.message}`);
    process.exit(1);
  });
}
