/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): reading a `traceparent` header,
 * writing one, and making the random ids. The gateway keeps a valid trace (its trace id and
 * sampled flag), starts one otherwise, and gives every hop it calls a parent id of its own span.
 */
import { randomFillSync } from 'node:crypto';

/** A caller's trace: the part of `traceparent` the gateway keeps. */
export interface IncomingTrace {
  traceId: string;
  /** The caller's span, the parent of the gateway's. */
  parentId: string;
  /** The trace flags as a number: 0x01 sampled, 0x02 random trace id (level 2); other bits are dropped. */
  flags: number;
}

/** The flags the gateway passes on; the others are reserved and must be sent as zero. */
const KNOWN_FLAGS = 0x03;
export const SAMPLED = 0x01;

/** A W3C trace id as stored and filtered: 32 lower-case hex characters. */
export const TRACE_ID = /^[0-9a-f]{32}$/;
const HEX = /^[0-9a-f]+$/;
const ALL_ZERO = /^0+$/;

/**
 * The trace a `traceparent` header names, or undefined when it is absent or invalid (then the
 * gateway starts a new trace, as the spec asks, and drops `tracestate`). Version 00 must be
 * exactly 55 characters; a later version may add fields after a `-`, which are ignored
 * (the spec's forward compatibility); version ff is invalid, and so are upper-case hex, an
 * all-zero trace id or parent id, and several headers (Node joins them with ", ").
 */
export function parseTraceparent(header: string | string[] | undefined): IncomingTrace | undefined {
  if (typeof header !== 'string' || header.length < 55) return undefined;
  const version = header.slice(0, 2);
  if (version === 'ff' || !HEX.test(version)) return undefined;
  if (version === '00' ? header.length !== 55 : header.length > 55 && header[55] !== '-') return undefined;
  if (header[2] !== '-' || header[35] !== '-' || header[52] !== '-') return undefined;
  const traceId = header.slice(3, 35);
  const parentId = header.slice(36, 52);
  const flags = header.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags) || ALL_ZERO.test(traceId) || ALL_ZERO.test(parentId)) return undefined;
  return { traceId, parentId, flags: parseInt(flags, 16) & KNOWN_FLAGS };
}

/** The `traceparent` (version 00) of span `spanId` in trace `traceId`. */
export function traceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags < 16 ? '0' : ''}${flags.toString(16)}`;
}

/** `tracestate` is passed on as sent when it is at most this long (the spec's 32 members of 256 bytes can be cut; 512 covers real use). */
const MAX_TRACESTATE = 512;
const TRACESTATE = /^[\x20-\x7e]*$/;

/** The `tracestate` to pass on with a kept trace: the client's, when printable and at most 512 characters; else none. */
export function keptTracestate(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  return value !== undefined && value.length <= MAX_TRACESTATE && TRACESTATE.test(value) ? value : undefined;
}

/**
 * Random trace and span ids, cut from a pool refilled 4 KiB at a time: one getrandom call per
 * ~170 requests rather than one or two per request. Never all zero (invalid in the spec).
 */
export class TraceIds {
  private readonly pool = Buffer.alloc(4096);
  private used = this.pool.length;

  /** 16 random bytes as 32 lower-case hex characters. */
  traceId(): string {
    return this.hex(16);
  }

  /** 8 random bytes as 16 lower-case hex characters. */
  spanId(): string {
    return this.hex(8);
  }

  private hex(bytes: number): string {
    for (;;) {
      if (this.used + bytes > this.pool.length) {
        randomFillSync(this.pool);
        this.used = 0;
      }
      const id = this.pool.toString('hex', this.used, this.used + bytes);
      this.used += bytes;
      if (!ALL_ZERO.test(id)) return id;
    }
  }
}
