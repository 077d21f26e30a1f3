/**
 * Seals the audit store's closed buckets into the hash chain, every few seconds, off the insert
 * path: inserts never wait for a chain head. Several workers may each run one; the sealing
 * function takes an advisory lock, so one seals at a time and the chain stays one. In the same
 * transaction, the events sealed are added to the minute rollup (store/minute-rollup.ts).
 */
import type { Logger } from '../../common/logger.js';
import { rollUpSealed } from '../store/minute-rollup.js';
import type { SqlClient } from '../store/sql-client.js';
import { CHAIN_LOCK_KEY } from './chain-sql.js';

export interface SealerOptions {
  /** Bucket length: a link ends on a multiple of it (since the epoch). */
  bucketSeconds: number;
  /**
   * A bucket is sealed only once it ended this long ago (and before every open transaction of
   * the database began). The open-transaction check alone is exact on PostgreSQL when the
   * workers' role can read pg_stat_activity; the margin is the guard when it cannot.
   */
  marginSeconds: number;
  /** How often the sealer runs. */
  intervalMs: number;
  /** Links written by one call at most (a long backlog is sealed over several runs). */
  maxLinksPerRun: number;
}

export const DEFAULT_SEALER_OPTIONS: SealerOptions = { bucketSeconds: 10, marginSeconds: 2, intervalMs: 5_000, maxLinksPerRun: 360 };

export interface SealedLink {
  seq: number;
  bucket_start: string;
  bucket_end: string;
  count: number;
  security_count: number;
  hash: string;
}

const SEAL = `
SELECT seq::int AS seq, to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS bucket_start,
  to_char(bucket_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS bucket_end,
  count::int AS count, security_count::int AS security_count, encode(hash, 'hex') AS hash
FROM audit_chain_seal($1, $2, $3) ORDER BY seq`;

export class ChainSealer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly options: SealerOptions;

  constructor(
    private readonly sql: SqlClient,
    private readonly logger: Logger,
    options: Partial<SealerOptions> = {},
  ) {
    this.options = { ...DEFAULT_SEALER_OPTIONS, ...options };
  }

  /**
   * Seals what is closed now; resolves the links written ([] when nothing was closed or
   * another worker holds the lock). Logs the new head: the log is where the head hash is
   * published, so a chain rewritten later no longer matches what was printed.
   */
  async sealOnce(): Promise<SealedLink[]> {
    const { bucketSeconds, marginSeconds, maxLinksPerRun } = this.options;
    const { rows, rolledUp } = await this.sql.transaction(async (tx) => {
      const locked = await tx.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${CHAIN_LOCK_KEY}) AS got`);
      if (!locked.rows[0]?.got) return { rows: [], rolledUp: 0 }; // another worker is sealing
      const sealed = await tx.query<SealedLink>(SEAL, [bucketSeconds, marginSeconds, maxLinksPerRun]);
      return { rows: sealed.rows, rolledUp: await rollUpSealed(tx) };
    });
    const head = rows.at(-1);
    if (head) {
      this.logger.info('audit chain sealed', {
        code: 'audit_chain_sealed',
        links: rows.length,
        events: rows.reduce((n, r) => n + r.count, 0),
        security_events: rows.reduce((n, r) => n + r.security_count, 0),
        rolled_up: rolledUp,
        head_seq: head.seq,
        head_end: head.bucket_end,
        head_hash: head.hash,
      });
    }
    return rows;
  }

  start(): void {
    const tick = (): void => {
      this.running = this.sealOnce()
        .then((links) => {
          // A full run means a backlog: go on at once.
          this.schedule(tick, links.length >= this.options.maxLinksPerRun ? 0 : this.options.intervalMs);
        })
        .catch((err: Error) => {
          this.logger.warn('audit chain sealing failed, will retry', { code: 'audit_chain_seal_failed', error: err.message });
          this.schedule(tick, this.options.intervalMs);
        });
    };
    this.schedule(tick, this.options.intervalMs);
  }

  private schedule(tick: () => void, ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(tick, ms);
    this.timer.unref();
  }

  /** Stops the loop and waits for a run in progress (before the store closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
