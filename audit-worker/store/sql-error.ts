/**
 * Telling what a failed statement says about its data from what it says about the database.
 * Both pg and PGlite put the SQLSTATE in `err.code`; a network error puts ECONNREFUSED & co
 * there, and a closed client no code at all.
 */

/** The five-character SQLSTATE of a database error, or undefined for any other error. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True when the statement's data was refused: class 22 (data exception, e.g. 22P05 a NUL in
 * jsonb) or 23 (integrity constraint violation). Retrying such a statement can never succeed;
 * every other failure (connection, shutdown, resources, timeouts) may, and must be retried.
 */
export function isDataError(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}
