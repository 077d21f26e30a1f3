/**
 * A PostgreSQL of a test's own (initdb + pg_ctl from /usr/lib/postgresql/<version>/bin) in a
 * temporary folder on a free port, trust auth, database `test`, which the test may stop and
 * start again. As root the server runs as the `postgres` user (PostgreSQL refuses root).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './net.js';

const run = promisify(execFile);
const PG_ROOT = '/usr/lib/postgresql';

function binDir(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(PG_ROOT, v, 'bin')).find((dir) => existsSync(join(dir, 'pg_ctl')));
  if (!found) throw new Error(`no PostgreSQL binaries under ${PG_ROOT}/*/bin`);
  return found;
}

export class PrivatePostgres {
  private constructor(private readonly bin: string, private readonly dir: string, readonly port: number) {}

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-pg-'));
    const pg = new PrivatePostgres(binDir(), dir, await freePort());
    if (userInfo().uid === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await pg.as('initdb', ['-D', pg.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    await pg.resume();
    await pg.as('createdb', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'test']);
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/test`;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** Starts the server (again) on its port and waits until it accepts connections. */
  async resume(): Promise<void> {
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off`;
    await this.as('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'log'), '-o', options, '-w', 'start']);
    await waitForPort(this.port);
  }

  /** Stops the server at once, as a crash would (`pg_ctl stop -m immediate`): clients lose their connections. */
  async stopImmediately(): Promise<void> {
    await this.as('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stopImmediately().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs one of the PostgreSQL binaries, as `postgres` when this process is root. */
  private async as(binary: string, args: string[]): Promise<void> {
    const command = join(this.bin, binary);
    if (userInfo().uid === 0) await run('runuser', ['-u', 'postgres', '--', command, ...args]);
    else await run(command, args);
  }
}
