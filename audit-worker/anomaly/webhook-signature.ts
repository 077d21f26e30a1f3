/**
 * The alert webhook's signature, Stripe style: `X-Gateway-Signature: t=<unix seconds>,v1=<hex>`
 * where v1 = HMAC-SHA256(secret, "<t>.<raw body>"). Signing the time lets a receiver refuse a
 * replayed request by its age. A receiver may copy verifyWebhookSignature as it is.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Gateway-Signature';
/** The stable id of one (alert, state) delivery: the same on every retry of it. */
export const DELIVERY_HEADER = 'X-Gateway-Delivery';

function hmacHex(secret: string, t: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex');
}

/** The header value signing `rawBody` at `t` (unix seconds). */
export function signWebhook(secret: string, rawBody: string | Buffer, t: number): string {
  return `t=${t},v1=${hmacHex(secret, t, rawBody)}`;
}

/**
 * True when `header` carries a v1 signature of `rawBody` (the bytes as received, before any
 * JSON parsing) made with `secret`, at a time within `toleranceS` seconds of `nowS`.
 */
export function verifyWebhookSignature(secret: string, header: string | undefined, rawBody: string | Buffer, toleranceS: number, nowS = Date.now() / 1000): boolean {
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of (header ?? '').split(',')) {
    const [key, value = ''] = part.trim().split('=', 2);
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (t === undefined || signatures.length === 0 || Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(hmacHex(secret, t, rawBody), 'hex');
  // Every v1 is compared (a sender rotating its secret may send two), each in constant time.
  return signatures.map((v1) => timingSafeEqual(Buffer.from(v1, 'hex'), expected)).includes(true);
}
