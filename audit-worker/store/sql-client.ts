/**
 * The one database seam of the worker: PostgreSQL (pg.Pool) in production, embedded PGlite by
 * default. Both speak the same SQL, so the store above is written once.
 */
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** Statements on one connection, with positional parameters (`$1`, `$2`, ...). */
export interface SqlQueries {
  /** One statement, parameterized (extended protocol). */
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** One or more statements without parameters (simple protocol), e.g. migrations. */
  exec(sql: string): Promise<void>;
}

/** A SQL connection (or pool). */
export interface SqlClient extends SqlQueries {
  /**
   * Runs `work` in one transaction on one connection (a pool's statements may each go to
   * another): committed when it resolves, rolled back when it throws.
   */
  transaction<T>(work: (tx: SqlQueries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Serializes concurrent DDL of several workers starting at once (CREATE ... IF NOT EXISTS races). */
export const DDL_LOCK_KEY = 7_311_401;

export interface PostgresOptions {
  /** Called with errors of idle pooled connections (e.g. the server restarted); the next query reconnects. */
  onError?: (err: Error) => void;
  max?: number;
}

/** A pool whose every connection runs with `search_path` = `schema`; the schema is created if missing. */
export async function openPostgres(url: string, schema: string, options: PostgresOptions = {}): Promise<SqlClient> {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name: ${JSON.stringify(schema)}`);
  // A startup parameter, so no query can ever run on a connection before search_path is set.
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: options.max ?? 10 });
  pool.on('error', (err) => options.onError?.(err));
  const client: SqlClient = {
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await pool.query(sql, params);
      return { rows: result.rows as R[] };
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async transaction<T>(work: (tx: SqlQueries) => Promise<T>): Promise<T> {
      const connection = await pool.connect();
      const tx: SqlQueries = {
        async query<R>(sql: string, params: unknown[] = []) {
          return { rows: (await connection.query(sql, params)).rows as R[] };
        },
        async exec(sql: string) {
          await connection.query(sql);
        },
      };
      let broken: Error | undefined;
      try {
        await connection.query('BEGIN');
        const result = await work(tx);
        await connection.query('COMMIT');
        return result;
      } catch (err) {
        await connection.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
        throw err;
      } finally {
        // A connection whose rollback failed is in an unknown state: destroyed, not pooled.
        connection.release(broken);
      }
    },
    close: () => pool.end(),
  };
  try {
    await client.exec(`BEGIN; SELECT pg_advisory_xact_lock(${DDL_LOCK_KEY}); CREATE SCHEMA IF NOT EXISTS "${schema}"; COMMIT;`);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return client;
}

/** Embedded PostgreSQL (WASM) persisted in `dataDir`, created if missing. */
export async function openPGlite(dataDir: string): Promise<SqlClient> {
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  return {
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await db.query<R>(sql, params);
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
    transaction: <T>(work: (tx: SqlQueries) => Promise<T>): Promise<T> =>
      db.transaction((tx) =>
        work({
          async query<R>(sql: string, params: unknown[] = []) {
            return { rows: (await tx.query<R>(sql, params)).rows };
          },
          async exec(sql: string) {
            await tx.exec(sql);
          },
        }),
      ),
    close: () => db.close(),
  };
}
