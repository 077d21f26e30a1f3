import type { IncomingMessage } from 'node:http';

/**
 * How many Authorization header fields the client sent. Node's parser keeps only the first in
 * `req.headers` and drops the rest, so a second token would pass unseen; `rawHeaders` has them
 * all. Only a request that has one at all is scanned, and only names of the right length are
 * lower-cased.
 */
export function authorizationCount(req: IncomingMessage): number {
  if (req.headers.authorization === undefined) return 0;
  const raw = req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++;
  }
  return count;
}
