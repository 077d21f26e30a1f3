import { readdirSync, readFileSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DiskSpool } from './disk-spool.js';

/** The file that says which live gateway owns a spool folder; its mtime is the owner's heartbeat. */
export const OWNER_FILE = 'owner.json';

interface Owner {
  gateway_id: string;
  host: string;
  pid: number;
  started_at: string;
}

export interface SpoolOwnerOptions {
  /** How often the owner touches its owner file. */
  heartbeatMs: number;
  /** An owner file untouched this long, on another host, belongs to a gateway that is gone. */
  staleMs: number;
  now?: () => number;
  host?: string;
  pid?: number;
  /** Whether a process of this host is alive (signal 0), injectable for tests. */
  pidAlive?: (pid: number) => boolean;
}

/** Another live gateway owns the folder: two processes must never share one spool. */
export class SpoolOwnedError extends Error {
  readonly code = 'audit_spool_owned';
  constructor(dir: string, owner: Owner, ageMs: number) {
    super(
      `spool folder ${dir} is owned by a live gateway (${owner.gateway_id}, pid ${owner.pid} on ${owner.host}, ` +
        `heartbeat ${Math.round(ageMs / 1000)} s ago): give each gateway its own GATEWAY_ID, or leave it unset`,
    );
    this.name = 'SpoolOwnedError';
  }
}

/**
 * Each gateway owns one spool folder, `<AUDIT_SPOOL_DIR>/<gateway id>/`, marked by an owner file
 * it touches every `heartbeatMs`. A folder whose owner is gone is an orphan: its batches are
 * events already answered, so a live gateway adopts them into its own spool and replays them.
 * The owner is gone when its owner file is missing, when it names a process of this host that no
 * longer runs, or (for another host, e.g. a removed container on a shared volume) when its
 * heartbeat is older than `staleMs`.
 */
export class SpoolOwner {
  private readonly now: () => number;
  private readonly host: string;
  private readonly pid: number;
  private readonly pidAlive: (pid: number) => boolean;
  private released = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly root: string, private readonly gatewayId: string, private readonly options: SpoolOwnerOptions) {
    this.now = options.now ?? Date.now;
    this.host = options.host ?? hostname();
    this.pid = options.pid ?? process.pid;
    this.pidAlive = options.pidAlive ?? isAlive;
  }

  get dir(): string {
    return join(this.root, this.gatewayId);
  }

  /** Marks the folder (created by the spool) as this process's; throws SpoolOwnedError if a live gateway owns it. */
  claim(): void {
    const owner = this.ownerOf(this.gatewayId);
    if (owner && !this.isGone(owner.owner, owner.ageMs)) throw new SpoolOwnedError(this.dir, owner.owner, owner.ageMs);
    const mine: Owner = { gateway_id: this.gatewayId, host: this.host, pid: this.pid, started_at: new Date(this.now()).toISOString() };
    writeFileSync(join(this.dir, OWNER_FILE), JSON.stringify(mine));
  }

  /** Touches the owner file; a folder whose owner file vanished is claimed again. */
  heartbeat(): void {
    if (this.released) return;
    const file = join(this.dir, OWNER_FILE);
    const at = new Date(this.now());
    try {
      utimesSync(file, at, at);
    } catch {
      this.claim();
    }
  }

  /** Moves the batches of every orphaned sibling folder into `spool`; removes the emptied folders. Returns batches adopted. */
  async adoptOrphans(spool: DiskSpool): Promise<number> {
    let adopted = 0;
    for (const id of this.siblings()) {
      const found = this.ownerOf(id);
      if (found && !this.isGone(found.owner, found.ageMs)) continue;
      const dir = join(this.root, id);
      if (!found && this.now() - mtimeOf(dir) < this.options.staleMs) continue; // maybe a gateway still starting
      adopted += await spool.adopt(dir);
      removeIfEmpty(dir);
    }
    return adopted;
  }

  /**
   * Every `heartbeatMs` until release(): touches the owner file and adopts orphaned folders into
   * `spool`. A pass still running when the next is due is not doubled (a plain flag, cleared in
   * `finally`, so no pass can leave it set).
   */
  keep(spool: DiskSpool, onAdopted: (batches: number) => void, onError: (err: Error) => void): void {
    let busy = false;
    const pass = async (): Promise<void> => {
      busy = true;
      try {
        this.heartbeat();
        const adopted = await this.adoptOrphans(spool);
        if (adopted > 0) onAdopted(adopted);
      } catch (err) {
        onError(err as Error);
      } finally {
        busy = false;
      }
    };
    this.timer = setInterval(() => void (busy || pass()), this.options.heartbeatMs);
    this.timer.unref();
  }

  /** On a clean stop: gives up the folder, and removes it when nothing is left in it. */
  release(): void {
    clearInterval(this.timer);
    this.released = true;
    try {
      unlinkSync(join(this.dir, OWNER_FILE));
    } catch {
      // already gone
    }
    removeIfEmpty(this.dir);
  }

  private siblings(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((e) => e.isDirectory() && e.name !== this.gatewayId)
        .map((e) => e.name);
    } catch {
      return [];
    }
  }

  private ownerOf(id: string): { owner: Owner; ageMs: number } | undefined {
    const file = join(this.root, id, OWNER_FILE);
    try {
      const owner = JSON.parse(readFileSync(file, 'utf8')) as Owner;
      return { owner, ageMs: this.now() - statSync(file).mtimeMs };
    } catch {
      return undefined; // no owner file, or one cut short by a crash: nobody owns the folder
    }
  }

  private isGone(owner: Owner, ageMs: number): boolean {
    if (owner.host !== this.host) return ageMs > this.options.staleMs;
    // The same pid on the same host is a former life of this process (a restarted container is pid 1 again).
    return owner.pid === this.pid || !this.pidAlive(owner.pid);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function mtimeOf(dir: string): number {
  return statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0;
}

/** Removes a spool folder holding nothing but an owner file or temporary files (set-aside batches keep it). */
function removeIfEmpty(dir: string): void {
  try {
    const names = readdirSync(dir);
    if (names.some((n) => n !== OWNER_FILE && !n.endsWith('.tmp'))) return;
    for (const n of names) if (n === OWNER_FILE || n.endsWith('.tmp')) unlinkSync(join(dir, n));
    rmdirSync(dir);
  } catch {
    // not empty after all, or gone: either way nothing to do
  }
}
