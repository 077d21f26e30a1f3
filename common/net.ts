import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

/**
 * `count` distinct TCP ports that were free a moment ago on 127.0.0.1: all are held open until
 * every one is chosen (freePort() twice in a row can answer the same port twice; a stack whose
 * status port was its traffic port once served its status 404s as the gateway's answers).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.on('error', reject);
            server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** True when something accepts a TCP connection on host:port right now. */
export function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Resolves once something accepts TCP connections on the port; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isListening(port, host))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Resolves once a just-spawned `child` listens on `port`; rejects at once if it exits first,
 * with `output()` (what it printed) in the message.
 */
export async function childListening(name: string, child: ChildProcess, port: number, timeoutMs: number, output: () => string): Promise<void> {
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before listening:\n${output()}`))),
  );
  exited.catch(() => undefined); // it may exit later, after listening: not an error here
  await Promise.race([waitForPort(port, timeoutMs), exited]);
}
