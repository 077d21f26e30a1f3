import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from '../../common/audit-event.js';

/** What the spool holds now: reported by the gateway's health endpoint and its stranded-batch log. */
export interface SpoolStats {
  batches: number;
  bytes: number;
  /** Age of the oldest batch in seconds; 0 when the spool is empty. */
  oldest_age_s: number;
}

/** `<ms since epoch, 15 digits>-<tag of the writing spool>-<sequence>.json`: sorts oldest first. */
const BATCH_FILE = /^(\d{15})-[0-9a-f]+-\d{9}\.json$/;

/**
 * A bounded folder of audit batches that could not be queued (Redis down), replayed oldest
 * first. One JSON file per batch, written to a temporary name and renamed, so a crash never
 * leaves half a batch behind. File names carry a random tag of the writing spool, so batches
 * adopted from another gateway's folder never collide with this one's.
 */
export class DiskSpool {
  private bytes = 0;
  private seq = 0;
  private readonly tag = randomBytes(4).toString('hex');

  constructor(readonly dir: string, private readonly maxBytes: number, private readonly now: () => number = Date.now) {
    mkdirSync(dir, { recursive: true });
    for (const name of this.list()) this.bytes += statSync(join(dir, name)).size;
  }

  /** Batch file names, oldest first. */
  list(): string[] {
    return batchFiles(this.dir);
  }

  get size(): number {
    return this.bytes;
  }

  stats(): SpoolStats {
    const names = this.list();
    const oldest = names.length > 0 ? Number(BATCH_FILE.exec(names[0] as string)?.[1] ?? this.now()) : this.now();
    return { batches: names.length, bytes: this.bytes, oldest_age_s: Math.max(0, Math.floor((this.now() - oldest) / 1000)) };
  }

  /**
   * Writes a batch; false (nothing written) when the spool would exceed its bound. A write that
   * fails (disk full, folder gone) throws and leaves the byte count as it was. `at` (ms since
   * epoch, default now) names the file, so it sorts by when the batch was published.
   */
  async write(events: readonly AuditEvent[], at: number = this.now()): Promise<boolean> {
    const body = JSON.stringify(events);
    const size = Buffer.byteLength(body);
    if (this.bytes + size > this.maxBytes) return false;
    // Counted before the first await, so concurrent writes cannot overshoot the bound together.
    this.bytes += size;
    const name = `${Math.floor(at).toString().padStart(15, '0')}-${this.tag}-${String(this.seq++).padStart(9, '0')}.json`;
    const tmp = join(this.dir, `.${name}.tmp`);
    try {
      await writeFile(tmp, body);
      await rename(tmp, join(this.dir, name));
    } catch (err) {
      this.bytes -= size;
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
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

  /**
   * Moves every batch of another spool folder into this one (one atomic rename each, so of two
   * gateways adopting the same folder at once, each batch goes to exactly one) and counts them.
   * Adopted batches are kept even past the bound: they are events already answered.
   * Returns how many batches were moved.
   */
  async adopt(fromDir: string): Promise<number> {
    let moved = 0;
    for (const name of batchFiles(fromDir)) {
      const target = join(this.dir, name);
      try {
        await rename(join(fromDir, name), target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another adopter took it
        throw err;
      }
      this.bytes += statSync(target, { throwIfNoEntry: false })?.size ?? 0;
      moved++;
    }
    return moved;
  }

  /** Takes a batch out of the replay order with `move`, and out of the byte count. */
  private async release(name: string, move: (path: string) => Promise<void>): Promise<void> {
    const path = join(this.dir, name);
    const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
    await move(path);
    this.bytes = Math.max(0, this.bytes - size);
  }
}

/** The batch files of a spool folder, oldest first; none when the folder is gone. */
function batchFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => BATCH_FILE.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
