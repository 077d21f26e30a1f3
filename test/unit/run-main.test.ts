/** What a process does with an unhandled rejection (common/run-main.ts), on real child processes. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { PROJECT_ROOT } from '../../common/paths.js';

/** Runs a process whose start leaves `rejection` unhandled; resolves its exit code and output. */
function runWith(rejection: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const runMain = join(PROJECT_ROOT, 'dist/common/run-main.js');
  const script = `
    const { runMain } = await import(${JSON.stringify(runMain)});
    runMain('probe', {}, async () => {
      void Promise.reject(${rejection});
      setTimeout(() => { console.log('still running'); process.exit(0); }, 300);
    });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('runMain and unhandled rejections', function () {
  this.timeout(20_000);

  it('logs a Redis command dropped with its connection (ioredis MaxRetriesPerRequestError, "Connection is closed.") and keeps running', async () => {
    for (const rejection of [
      `Object.defineProperty(new Error('Reached the max retries per request limit (which is 1).'), 'name', { value: 'MaxRetriesPerRequestError' })`,
      `new Error('Connection is closed.')`,
    ]) {
      const { code, stdout, stderr } = await runWith(rejection);
      expect(code, stderr).to.equal(0);
      expect(stdout).to.include('still running');
      const line = JSON.parse(stderr.trim()) as Record<string, unknown>;
      expect(line).to.include({ level: 'warn', code: 'redis_command_dropped', service: 'probe' });
    }
  });

  it('ends the process with exit 1 and names any other unhandled rejection', async () => {
    const { code, stdout, stderr } = await runWith(`new TypeError('a bug')`);
    expect(code).to.equal(1);
    expect(stdout).to.not.include('still running');
    expect(stderr).to.include('probe: unhandled rejection: TypeError: a bug');
  });
});
