/** What the worker counts while it runs, shown by the query API's `GET /healthz`. */
export interface WorkerStats {
  /** Valid events the database refused (kept in `audit_events_rejected`). */
  events_set_aside: number;
  /** Events dropped because they failed validation (never stored anywhere). */
  events_malformed: number;
}

export function newWorkerStats(): WorkerStats {
  return { events_set_aside: 0, events_malformed: 0 };
}
