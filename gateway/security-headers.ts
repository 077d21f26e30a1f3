/**
 * Headers on the gateway's own answers (its errors, redirects, preflights, /__gateway endpoints):
 * no MIME sniffing of its JSON, and over HTTPS a year of Strict-Transport-Security. Proxied
 * answers carry the upstream's own headers (it knows its content and its domain).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

const PLAIN = Object.freeze({ 'X-Content-Type-Options': 'nosniff' });
const SECURE = Object.freeze({ 'X-Content-Type-Options': 'nosniff', 'Strict-Transport-Security': 'max-age=31536000' });

export function ownAnswerHeaders(req: IncomingMessage | undefined): Readonly<Record<string, string>> {
  return (req?.socket as TLSSocket | undefined)?.encrypted === true ? SECURE : PLAIN;
}
