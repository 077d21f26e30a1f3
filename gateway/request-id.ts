import { randomUUID } from 'node:crypto';

const VALID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Keeps a well-formed client-sent X-Request-Id (for tracing across systems), else makes one. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && VALID.test(header) ? header : randomUUID();
}
