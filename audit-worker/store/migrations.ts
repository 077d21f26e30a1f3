/**
 * Every schema change of the audit store, in order: the one place for the list. run-migrations.ts
 * applies those a database has not recorded (table audit_schema_migrations), each once.
 * An applied step is never edited: a change is a new step at the end. (The chain's sealing
 * function is made by step 9 and made again, CREATE OR REPLACE, by each step that changes it, so
 * step 9 makes the current one on a new database; the later step then makes it once more.) Steps 1-5 are the schema
 * as the worker made it before versions (CREATE ... IF NOT EXISTS), so a database made then is
 * adopted: they change nothing there and are recorded.
 */
import { ALERTS_DDL } from '../anomaly/alert-store.js';
import { CHAIN_DDL, CHAIN_ROW_VERSION_DDL, SEAL_FUNCTION_AGAIN_DDL } from '../chain/chain-sql.js';
import { WEBHOOK_OUTBOX_DDL } from '../anomaly/webhook-outbox.js';
import { ADDED_COLUMNS_DDL, ALL_COLUMNS, PARTITIONED_DDL, REJECTED_DDL, TRACE_COLUMNS_DDL, UNPARTITIONED_DDL, UNPARTITIONED_INDEXES } from './audit-events-table.js';
import { MINUTE_ROLLUP_DDL } from './minute-rollup.js';
import { createPartition } from './partitions.js';
import { SECURITY_EVENTS_DDL, SECURITY_KIND_CHECKS_WIDENED } from './security-event-store.js';
import type { SqlQueries } from './sql-client.js';

export interface Migration {
  /** 1, 2, 3, ... in list order. */
  version: number;
  /** What it does, in a few words (recorded beside the version). */
  name: string;
  /** SQL statements, or a step that needs to look before it acts; run inside the migration transaction. */
  up: string | ((tx: SqlQueries) => Promise<void>);
}

/**
 * Turns the unpartitioned audit_events into one partitioned by day, keeping every row: the old
 * table is renamed, the new one made with a partition for each day the old one holds, the rows
 * copied, the old table dropped; all in the migration's transaction, so a failure leaves the old
 * table as it was. The copy takes as long as the table's size asks, once.
 */
async function partitionAuditEvents(tx: SqlQueries): Promise<void> {
  const { rows } = await tx.query<{ kind: string }>(`SELECT relkind::text AS kind FROM pg_class WHERE oid = to_regclass('audit_events')`);
  if (rows[0]?.kind === 'p') return;
  await tx.exec(`
    ${ADDED_COLUMNS_DDL}
    ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
    ALTER INDEX audit_events_pkey RENAME TO audit_events_unpartitioned_pkey;
    DROP INDEX IF EXISTS ${UNPARTITIONED_INDEXES.join(', ')};
    ${PARTITIONED_DDL}`);
  const days = await tx.query<{ day: string }>(`SELECT DISTINCT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day FROM audit_events_unpartitioned`);
  for (const { day } of days.rows) await createPartition(tx, day);
  await tx.exec(`
    INSERT INTO audit_events (${ALL_COLUMNS}) SELECT ${ALL_COLUMNS} FROM audit_events_unpartitioned;
    DROP TABLE audit_events_unpartitioned;`);
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'audit_events', up: UNPARTITIONED_DDL },
  { version: 2, name: 'audit_events_rejected', up: REJECTED_DDL },
  { version: 3, name: 'audit_alerts', up: ALERTS_DDL },
  { version: 4, name: 'audit_alert_webhooks', up: WEBHOOK_OUTBOX_DDL },
  { version: 5, name: 'audit_security_events', up: SECURITY_EVENTS_DDL },
  { version: 6, name: 'audit_events partitioned by day', up: partitionAuditEvents },
  { version: 7, name: 'audit_security_events kinds: admin_query', up: SECURITY_KIND_CHECKS_WIDENED },
  {
    version: 8,
    name: 'investigation indexes: alerts and security events citing a request or alert',
    up: `
CREATE INDEX IF NOT EXISTS audit_alerts_sample_request_ids ON audit_alerts USING gin (sample_request_ids);
CREATE INDEX IF NOT EXISTS audit_security_events_alert_id ON audit_security_events (alert_id) WHERE alert_id IS NOT NULL;`,
  },
  { version: 9, name: 'audit_chain: the hash chain, its sealing function, BRIN on stored_at', up: CHAIN_DDL },
  { version: 10, name: 'audit_rollup_minute: requests per minute by route, decision and reason', up: MINUTE_ROLLUP_DDL },
  { version: 11, name: 'audit_events.token_iat: when the token presented was issued', up: ADDED_COLUMNS_DDL },
  { version: 12, name: 'audit_chain.row_version: token_iat in the rows sealed from now on', up: CHAIN_ROW_VERSION_DDL },
  { version: 13, name: 'audit_events: upstream_target, upstream_tries, bytes_in (pools and WebSockets)', up: ADDED_COLUMNS_DDL },
  { version: 14, name: 'audit_chain: rows sealed with upstream_target, upstream_tries, bytes_in', up: SEAL_FUNCTION_AGAIN_DDL },
  { version: 15, name: 'audit_security_events subject kinds: kid', up: SECURITY_KIND_CHECKS_WIDENED },
  { version: 16, name: 'audit_security_events kinds: limit_set, limit_clear', up: SECURITY_KIND_CHECKS_WIDENED },
  { version: 17, name: 'audit_events: trace_id (indexed), config_hash', up: TRACE_COLUMNS_DDL },
  { version: 18, name: 'audit_chain: rows sealed with trace_id, config_hash', up: SEAL_FUNCTION_AGAIN_DDL },
  { version: 19, name: 'audit_security_events kinds: user_add, user_enable', up: SECURITY_KIND_CHECKS_WIDENED },
];
