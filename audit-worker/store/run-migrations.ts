/**
 * Applies the migrations a database has not recorded, in order, each once, in one transaction
 * under the advisory lock: of several workers starting at once, the first applies them and the
 * others, let in after its commit, find them recorded and do nothing.
 */
import { MIGRATIONS, type Migration } from './migrations.js';
import { DDL_LOCK_KEY, type SqlClient } from './sql-client.js';

const MIGRATIONS_DDL = `
CREATE TABLE IF NOT EXISTS audit_schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);`;

/** Resolves the versions applied by this call (none when the database was up to date). */
export async function runMigrations(sql: SqlClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name}: version ${m.version} out of order (expected ${i + 1})`);
  });
  return sql.transaction(async (tx) => {
    await tx.exec(`SELECT pg_advisory_xact_lock(${DDL_LOCK_KEY}); ${MIGRATIONS_DDL}`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM audit_schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...applied);
    if (newest > migrations.length) throw new Error(`the audit store is at schema version ${newest}, newer than this worker knows (${migrations.length}): run a newer worker`);
    const ran: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      if (typeof m.up === 'string') await tx.exec(m.up);
      else await m.up(tx);
      await tx.query('INSERT INTO audit_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      ran.push(m.version);
    }
    return ran;
  });
}
