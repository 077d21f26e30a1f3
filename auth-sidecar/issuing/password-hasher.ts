/**
 * Checks passwords against bcrypt hashes on one worker thread (bcrypt-thread.ts), so a login
 * costs the sidecar's event loop nothing while its ~80-330 ms of rounds run. A check that would
 * wait longer than MAX_WAIT_MS behind the others (by the measured time per check) is refused at
 * once (503), never queued without bound. The thread is restarted if it dies.
 */
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** The longest a check may expect to wait for the thread; well within the gateway's 10 s for a token call. */
const MAX_WAIT_MS = 4_000;

/** Thrown when too many checks already wait. */
export class HasherBusyError extends Error {
  constructor() {
    super(`password checks already wait for more than ${MAX_WAIT_MS} ms`);
    this.name = 'HasherBusyError';
  }
}

export class PasswordHasher {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, { resolve: (ok: boolean) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  /** A hash of a random password at the configured cost: unknown users are checked against it, so they take as long. */
  readonly decoyHash: string;

  /** Moving average of one check's time on the thread, in ms (first: the decoy's hashing). */
  private checkMs: number;

  constructor(cost: number) {
    const started = performance.now();
    this.decoyHash = bcrypt.hashSync(randomBytes(16).toString('base64'), cost);
    this.checkMs = performance.now() - started;
  }

  /** Whether `password` matches `hash`; false for a malformed hash. Rejects with HasherBusyError when full. */
  matches(password: string, hash: string): Promise<boolean> {
    if (this.waiting.size * this.checkMs > MAX_WAIT_MS) return Promise.reject(new HasherBusyError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.thread().postMessage({ id, password, hash });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./bcrypt-thread.js', import.meta.url));
    worker.unref();
    worker.on('message', ({ id, ok, ms }: { id: number; ok: boolean; ms: number }) => {
      this.checkMs = 0.8 * this.checkMs + 0.2 * ms;
      this.waiting.get(id)?.resolve(ok);
      this.waiting.delete(id);
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const pending of this.waiting.values()) pending.reject(err);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the password thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
