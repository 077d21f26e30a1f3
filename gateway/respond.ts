import type { ServerResponse } from 'node:http';
import { errorBody, REASONS, type Reason } from '../common/errors.js';

/** Answers with the JSON error body of the README's table: `{"error", "reason", "request_id"}`. */
export function sendError(res: ServerResponse, reason: Reason, requestId: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(reason, requestId);
  res.writeHead(REASONS[reason].status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}
