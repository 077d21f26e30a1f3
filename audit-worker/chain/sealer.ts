/**
 * Seals the audit store's closed buckets into the hash chain, every few seconds, off the insert
 * path: inserts never wait for a chain head. Several workers may each run one; the sealing
 * function takes an advisory lock, so one seals at a time and the chain stays one. In the same
 * transaction, the events sealed are added to the minute rollup (store/minute-rollup.ts).
 */
import { auditSchema, type AuditConfig } from '../../common/config/audit-schema.js';
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
  /** The head lagging the clock by more than this is logged at error level, at most once a minute. */
  lagAlertSeconds: number;
}

/** The sealer's options from the config's `audit.chain` (whose defaults are the sealer's). */
export function sealerOptions(chain: AuditConfig['chain']): SealerOptions {
  return { bucketSeconds: chain.bucket_s, marginSeconds: chain.margin_s, intervalMs: chain.interval_s * 1000, lagAlertSeconds: chain.lag_alert_s, maxLinksPerRun: 360 };
}

export const DEFAULT_SEALER_OPTIONS: SealerOptions = sealerOptions(auditSchema.parse({}).chain);

/** What /healthz shows of the chain. */
export interface ChainHealth {
  /** Seconds between the chain head's end (before the first link: the oldest row stored) and now, as of the last run; null with nothing stored. */
  head_lag_s: number | null;
  /** head_lag_s above lag_alert_s: the chain is not keeping up (README: Tamper evidence, when the chain lags). */
  lagging: boolean;
  /** Runs that failed in a row (0 after a run that did not). */
  failed_runs: number;
}

const LAG_LOG_EVERY_MS = 60_000;

/** The head's end, or before the first link the oldest row stored (a chain that never sealed lags too). */
const LAG = `
SELECT extract(epoch FROM now() - coalesce(
  (SELECT bucket_end FROM audit_chain ORDER BY seq DESC LIMIT 1),
  least((SELECT min(stored_at) FROM audit_events), (SELECT min(stored_at) FROM audit_security_events))))::float8 AS lag`;

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
  private readonly health: ChainHealth = { head_lag_s: null, lagging: false, failed_runs: 0 };
  private lastLagLog = -Infinity;
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
          this.health.failed_runs = 0;
          // A full run means a backlog: go on at once.
          return links.length >= this.options.maxLinksPerRun ? 0 : this.options.intervalMs;
        })
        .catch((err: Error) => {
          this.health.failed_runs++;
          this.logger.warn('audit chain sealing failed, will retry', { code: 'audit_chain_seal_failed', error: err.message, failed_runs: this.health.failed_runs });
          return this.options.intervalMs;
        })
        .then(async (next) => {
          await this.checkLag().catch(() => undefined); // the store unreachable: the run's failure is logged already
          this.schedule(tick, next);
        });
    };
    this.schedule(tick, this.options.intervalMs);
  }

  /** The chain's state as of the last run, for /healthz. */
  status(): ChainHealth {
    return { ...this.health };
  }

  /**
   * Reads how far the head lags the database's clock. A healthy chain lags by up to a bucket,
   * the margin and the interval, idle or not (empty buckets are sealed too); more means the
   * sealing fails, another worker holds the lock without sealing, or a transaction writing the
   * audit tables stays open (the cutoff waits for it). Logged at error level, once a minute.
   */
  async checkLag(): Promise<ChainHealth> {
    const { rows } = await this.sql.query<{ lag: number | null }>(LAG);
    const lag = rows[0]?.lag ?? undefined;
    // Rounded up to 0.1 s: a lag just over lag_alert_s must not read as equal to it.
    this.health.head_lag_s = lag === undefined ? null : Math.ceil(lag * 10) / 10;
    this.health.lagging = lag !== undefined && lag > this.options.lagAlertSeconds;
    if (this.health.lagging && Date.now() - this.lastLagLog >= LAG_LOG_EVERY_MS) {
      this.lastLagLog = Date.now();
      this.logger.error('audit chain is not keeping up: events stored since its head are not sealed', {
        code: 'audit_chain_lagging',
        head_lag_s: this.health.head_lag_s,
        lag_alert_s: this.options.lagAlertSeconds,
        failed_runs: this.health.failed_runs,
      });
    }
    return this.status();
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
