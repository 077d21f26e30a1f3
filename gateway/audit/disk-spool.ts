import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from '../../common/audit-event.js';

/**
 * A bounded folder of audit batches that could not be queued (Redis down), replayed oldest
 * first. One JSON file per batch, written to a temporary name and renamed, so a crash never
 * leaves half a batch behind.
 */
export class DiskSpool {
  private bytes = 0;
  private seq = 0;

  constructor(readonly dir: string, private readonly maxBytes: number) {
    mkdirSync(dir, { recursive: true });
    for (const name of this.list()) this.bytes += statSync(join(dir, name)).size;
  }

  /** Batch file names, oldest first. */
  list(): string[] {
    return readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort();
  }

  get size(): number {
    return this.bytes;
  }

  /** Writes a batch; false (nothing written) when the spool would exceed its bound. */
  async write(events: readonly AuditEvent[]): Promise<boolean> {
    const body = JSON.stringify(events);
    const size = Buffer.byteLength(body);
    if (this.bytes + size > this.maxBytes) return false;
    this.bytes += size;
    const name = `${Date.now().toString().padStart(15, '0')}-${process.pid}-${String(this.seq++).padStart(9, '0')}.json`;
    const tmp = join(this.dir, `.${name}.tmp`);
    await writeFile(tmp, body);
    await rename(tmp, join(this.dir, name));
    return true;
  }

  async read(name: string): Promise<AuditEvent[]> {
    return JSON.parse(await readFile(join(this.dir, name), 'utf8')) as AuditEvent[];
  }

  /** Moves a batch that cannot be read out of the replay order, keeping it for an operator. */
  async setAside(name: string): Promise<void> {
    await this.release(name, (path) => rename(path, `${path}.corrupt`));
  }

  async remove(name: string): Promise<void> {
    await this.release(name, (path) =>
      unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      }),
    );
  }

  /** Takes a batch out of the replay order with `move`, and out of the byte count. */
  private async release(name: string, move: (path: string) => Promise<void>): Promise<void> {
    const path = join(this.dir, name);
    const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
    await move(path);
    this.bytes = Math.max(0, this.bytes - size);
  }
}
