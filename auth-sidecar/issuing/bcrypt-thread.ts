/**
 * The body of the password hasher's worker thread (password-hasher.ts): bcrypt's rounds run
 * here, off the sidecar's event loop, where bcryptjs would block decisions for up to 100 ms
 * at a time. Messages: { id, password, hash } -> { id, ok, ms } (ms: the check's time).
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

parentPort?.on('message', ({ id, password, hash }: { id: number; password: string; hash: string }) => {
  const started = performance.now();
  let ok = false;
  try {
    ok = bcrypt.compareSync(password, hash);
  } catch {
    ok = false; // a malformed stored hash matches nothing
  }
  parentPort?.postMessage({ id, ok, ms: performance.now() - started });
});
