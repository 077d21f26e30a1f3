import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../common/paths.js';
import { childListening } from '../../common/net.js';

/** A built process of the product (dist/…), its output kept for failure messages. */
/** Several processes of a kind run at once in tests: each takes any free status port unless a test names one. */
const ANY_STATUS_PORT = { GATEWAY_STATUS_PORT: '0', SIDECAR_STATUS_PORT: '0', WORKER_STATUS_PORT: '0' };

export class ProductProcess {
  readonly output: string[] = [];
  private constructor(readonly name: string, private readonly child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
  }

  /** Spawns `node dist/<entry>` with exactly `env` (plus PATH) and waits until `port` accepts connections. */
  static async start(name: string, entry: string, env: Record<string, string>, port: number): Promise<ProductProcess> {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', entry)], {
      env: { PATH: process.env.PATH ?? '', ...ANY_STATUS_PORT, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new ProductProcess(name, child);
    await childListening(name, child, port, 30_000, () => proc.output.join(''));
    return proc;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal without waiting for an exit, e.g. SIGSTOP / SIGCONT to freeze and thaw it. */
  signal(signal: NodeJS.Signals): void {
    if (!this.child.kill(signal)) throw new Error(`${this.name} is not running`);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    const exited = once(this.child, 'exit');
    this.child.kill(signal);
    const [code] = await exited;
    return code as number | null;
  }
}

/** Runs a built CLI (dist/cli/<name>.js) to completion. */
/** `input` is written to the CLI's stdin (e.g. a password), which is then closed. */
export async function runCli(entry: string, args: string[], env: Record<string, string>, input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', entry), ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
  child.stdin.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}
