import type { ServerResponse } from 'node:http';
import { errorBody, REASONS, type Reason } from '../common/errors.js';
import { ownAnswerHeaders } from './security-headers.js';

/** A route's own status and `error` text for a refusal, in place of the README table's. */
export interface ErrorAnswer {
  status: number;
  message?: string | undefined;
}

/** Answers with the JSON error body of the README's table: `{"error", "reason", "request_id"}`. */
export function sendError(res: ServerResponse, reason: Reason, requestId: string, headers: Record<string, string> = {}, answer?: ErrorAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(reason, requestId, answer?.message);
  res.writeHead(answer?.status ?? REASONS[reason].status, {
    ...ownAnswerHeaders(res.req),
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}
