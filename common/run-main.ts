/**
 * The frame of every process entry point: run `start`, print a clear message and exit 1 when
 * it fails (a bad variable, a bad config key), and on SIGTERM/SIGINT run the stop hooks once.
 * An unhandled rejection ends the process (exit 1, named), except a Redis command dropped with
 * its connection (isDroppedRedisCommand), which is logged.
 */
export type OnStop = (hook: () => Promise<void>) => void;

export interface RunOptions {
  /** After this long, stopping gives up and exits 1 (default 10 s). */
  stopTimeoutMs?: number;
}

/**
 * A Redis command rejected because its connection was lost (ioredis's MaxRetriesPerRequestError,
 * or "Connection is closed."). When nobody handles it, a library sent it on its own: ioredis
 * resubscribing a reconnected subscriber leaves that promise unhandled, and a drop in that moment
 * ended the gateway in the Redis-kill chaos test. Nothing of ours is lost with it (our own
 * commands handle their errors), so it is logged, not fatal.
 */
export function isDroppedRedisCommand(reason: unknown): reason is Error {
  return reason instanceof Error && (reason.name === 'MaxRetriesPerRequestError' || reason.message === 'Connection is closed.');
}

export function runMain(name: string, options: RunOptions, start: (onStop: OnStop) => Promise<void>): void {
  process.on('unhandledRejection', (reason) => {
    if (isDroppedRedisCommand(reason)) {
      const line = { level: 'warn', message: 'a Redis command nobody waited for was dropped with its connection', code: 'redis_command_dropped', error: reason.message, service: name, timestamp: new Date().toISOString() };
      return void console.error(JSON.stringify(line));
    }
    console.error(`${name}: unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
    process.exit(1);
  });
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
