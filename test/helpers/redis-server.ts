import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort, waitForPort } from './net.js';

export interface TestRedisOptions {
  /**
   * Persist every write to an append-only file in this folder, fsynced before each reply
   * (`appendfsync always`), so a SIGKILL loses nothing Redis acknowledged: what a queue needs.
   */
  aofDir?: string;
}

/** A private `redis-server` on a free port that a test can stop and start again. */
export class TestRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number, private readonly options: TestRedisOptions) {}

  static async start(options: TestRedisOptions = {}): Promise<TestRedis> {
    const redis = new TestRedis(await freePort(), options);
    await redis.resume();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server again on the same port (after `stop`). */
  async resume(): Promise<void> {
    const persistence = this.options.aofDir
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.options.aofDir]
      : ['--appendonly', 'no'];
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
      stdio: 'ignore',
    });
    await waitForPort(this.port);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered until `unpause`. */
  pause(): void {
    if (!this.child?.kill('SIGSTOP')) throw new Error('redis-server is not running');
  }

  /** Lets a paused server run again (SIGCONT); it then works through what queued meanwhile. */
  unpause(): void {
    if (!this.child?.kill('SIGCONT')) throw new Error('redis-server is not running');
  }
}
