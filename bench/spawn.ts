import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { childListening } from '../common/net.js';
import { PROJECT_ROOT } from '../common/paths.js';

export interface Running {
  name: string;
  child: ChildProcess;
  pid: number;
}

// BENCH_PROFILE=DIR writes a V8 CPU profile of every node process into DIR when it exits.
const NODE_ARGS = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];

const spawned: Running[] = [];

export interface StartOptions {
  /** Extra node flags, e.g. --trace-gc. */
  nodeArgs?: string[];
  /** Receives each line the process prints on stdout (otherwise ignored). */
  onStdoutLine?: (line: string) => void;
}

/** Spawns `node dist/<entry>` (or a command) and waits until `port` accepts connections. */
export async function start(name: string, command: string[], env: Record<string, string>, port: number, options: StartOptions = {}): Promise<Running> {
  const [file, ...args] = command[0]!.endsWith('.js')
    ? [process.execPath, ...NODE_ARGS, ...(options.nodeArgs ?? []), join(PROJECT_ROOT, 'dist', command[0]!), ...command.slice(1)]
    : command;
  const stdout = options.onStdoutLine ? 'pipe' : 'ignore';
  // Replicas of a kind run at once: each takes any free status port.
  const child = spawn(file!, args, { env: { PATH: process.env.PATH ?? '', GATEWAY_STATUS_PORT: '0', SIDECAR_STATUS_PORT: '0', WORKER_STATUS_PORT: '0', ...env }, stdio: ['ignore', stdout, 'pipe'] });
  if (options.onStdoutLine && child.stdout) createInterface({ input: child.stdout }).on('line', options.onStdoutLine);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  spawned.push({ name, child, pid: child.pid as number });
  await childListening(name, child, port, 60_000, () => stderr);
  return { name, child, pid: child.pid as number };
}

/** Stops every process `start` spawned, newest first. */
export async function stopAll(): Promise<void> {
  for (const r of spawned.reverse()) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
    const exited = new Promise((resolve) => r.child.once('exit', resolve));
    r.child.kill('SIGTERM');
    await exited;
  }
}
