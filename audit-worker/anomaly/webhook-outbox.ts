/**
 * The alert webhook's outbox (table audit_alert_webhooks, created by EventStore.migrate): one
 * row per alert state change to send, written by AlertStore in the same statement as the change,
 * unique per (alert_id, state) so that however many workers or redeliveries see the change it is
 * queued once. The delivery loop claims due rows with a lease, then marks them.
 */
import type { SqlClient } from '../store/sql-client.js';
import type { Alert } from './alert-store.js';

export const WEBHOOK_STATES = ['opened', 'banned', 'acked'] as const;
export type WebhookState = (typeof WEBHOOK_STATES)[number];

export const WEBHOOK_OUTBOX_DDL = `
CREATE TABLE IF NOT EXISTS audit_alert_webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  alert_id uuid NOT NULL,
  state text NOT NULL,
  alert jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  CONSTRAINT audit_alert_webhooks_once UNIQUE (alert_id, state),
  CONSTRAINT audit_alert_webhooks_state CHECK (state IN (${WEBHOOK_STATES.map((s) => `'${s}'`).join(', ')})),
  CONSTRAINT audit_alert_webhooks_status CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX IF NOT EXISTS audit_alert_webhooks_due ON audit_alert_webhooks (next_attempt_at) WHERE status = 'pending';`;

/** A claimed delivery: its id is the stable delivery id; `attempt` counts this one. */
export interface ClaimedDelivery {
  id: string;
  state: WebhookState;
  /** The alert as it was right after the change (the shape GET /v1/alerts answers). */
  alert: Alert;
  attempt: number;
}

// Claiming moves next_attempt_at past the lease: a worker that dies mid-send leaves the row due
// again once the lease is over. SKIP LOCKED keeps two workers claiming at once off each other's rows.
const CLAIM = `
WITH due AS (
  SELECT id FROM audit_alert_webhooks
  WHERE status = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
UPDATE audit_alert_webhooks w
SET attempts = w.attempts + 1, next_attempt_at = now() + $2 * interval '1 millisecond'
FROM due WHERE w.id = due.id
RETURNING w.id, w.state, w.alert, w.attempts AS attempt`;

// Each mark names the attempt it ends, so a stale worker (its lease over, the row claimed again)
// cannot overwrite the newer attempt's outcome.
const MINE = `id = $1 AND attempts = $2 AND status = 'pending'`;

export class WebhookOutbox {
  constructor(private readonly sql: SqlClient) {}

  /** Up to `limit` due deliveries, each leased to this caller for `leaseMs`. */
  async claim(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    return (await this.sql.query<ClaimedDelivery>(CLAIM, [limit, leaseMs])).rows;
  }

  async delivered(d: ClaimedDelivery): Promise<void> {
    await this.sql.query(`UPDATE audit_alert_webhooks SET status = 'delivered', delivered_at = now(), last_error = NULL WHERE ${MINE}`, [d.id, d.attempt]);
  }

  /** Schedules the next attempt in `delayMs`, or with `delayMs` undefined marks the delivery failed. */
  async attemptFailed(d: ClaimedDelivery, error: string, delayMs: number | undefined): Promise<void> {
    if (delayMs === undefined) {
      await this.sql.query(`UPDATE audit_alert_webhooks SET status = 'failed', last_error = $3 WHERE ${MINE}`, [d.id, d.attempt, error]);
    } else {
      await this.sql.query(`UPDATE audit_alert_webhooks SET next_attempt_at = now() + $3 * interval '1 millisecond', last_error = $4 WHERE ${MINE}`, [d.id, d.attempt, delayMs, error]);
    }
  }

  /** Gives back an attempt cut short by this worker stopping: due at once, not counted. */
  async release(d: ClaimedDelivery): Promise<void> {
    await this.sql.query(`UPDATE audit_alert_webhooks SET attempts = attempts - 1, next_attempt_at = now() WHERE ${MINE}`, [d.id, d.attempt]);
  }
}
