/**
 * The two audit stores a store suite runs against: PostgreSQL (a schema of its own on the
 * machine's server) and embedded PGlite (a folder of its own).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPGlite, openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { PG_URL } from './postgres.js';

export interface OpenedStore {
  sql: SqlClient;
  /** A client on another, empty database (closed by cleanup unless closed before). */
  openEmpty(): Promise<SqlClient>;
  cleanup(): Promise<void>;
}

export interface StoreBackend {
  name: 'PostgreSQL' | 'PGlite';
  open(): Promise<OpenedStore>;
}

const closeQuietly = (sql: SqlClient) => sql.close().catch(() => undefined);

export const STORE_BACKENDS: StoreBackend[] = [
  {
    name: 'PostgreSQL',
    async open() {
      const schemas = [`audit_test_${randomBytes(6).toString('hex')}`];
      const sql = await openPostgres(PG_URL, schemas[0]!);
      const others: SqlClient[] = [];
      return {
        sql,
        async openEmpty() {
          schemas.push(`audit_test_${randomBytes(6).toString('hex')}`);
          const other = await openPostgres(PG_URL, schemas.at(-1)!);
          others.push(other);
          return other;
        },
        async cleanup() {
          for (const other of others) await closeQuietly(other);
          for (const schema of schemas) await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await sql.close();
        },
      };
    },
  },
  {
    name: 'PGlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'audit-store-'));
      const sql = await openPGlite(join(dir, 'db'));
      const others: SqlClient[] = [];
      return {
        sql,
        async openEmpty() {
          const other = await openPGlite(join(dir, `empty-${others.length + 1}`));
          others.push(other);
          return other;
        },
        async cleanup() {
          for (const other of others) await closeQuietly(other);
          await sql.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
