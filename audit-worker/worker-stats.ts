/** What the worker counts while it runs, shown by the query API's `GET /healthz`. */
export interface WorkerStats {
  /** Valid events the database refused (kept in `audit_events_rejected`). */
  events_set_aside: number;
  /** Events dropped because they failed validation (never stored anywhere). */
  events_malformed: number;
  /** Audit events stored (each once). */
  events_stored: number;
  /** Audit events skipped because their event_id was stored already (a redelivered or replayed batch). */
  events_duplicate: number;
}

export function newWorkerStats(): WorkerStats {
  return { events_set_aside: 0, events_malformed: 0, events_stored: 0, events_duplicate: 0 };
}
