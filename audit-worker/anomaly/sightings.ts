/**
 * token_many_ips counts distinct client ips per token (jti), not events. A sighting is a
 * (jti, ip) pair: detect.lua counts it only when Redis has not seen that pair within the
 * rule's window (its sighting key, refreshed on each sighting sent). Every event of a token
 * carries a jti, so this filter keeps Redis out of the steady state: a pair goes to Redis once
 * per batch at most, and is not sent again by this worker for half a window after it was
 * counted (the key, kept a full window, is refreshed before it expires).
 */
import { LRUCache } from 'lru-cache';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import { clientIp, type RuleHit } from './rules.js';

/** Pairs remembered per worker; past it the oldest are sent again (correct, only dearer). */
const MAX_REMEMBERED = 100_000;

export interface Sighting {
  hit: RuleHit;
  /** The (jti, ip) pair as this filter knows it (the address as the event spells it). */
  pair: string;
  /** The pair in Redis (the address canonical, so two spellings of one address count once). */
  counted: string;
}

export class Sightings {
  private readonly rule: AnomalyConfig['rules']['token_many_ips'];
  private readonly sent: LRUCache<string, true>;

  constructor(config: AnomalyConfig) {
    this.rule = config.rules.token_many_ips;
    this.sent = new LRUCache({ max: MAX_REMEMBERED, ttl: (this.rule.window * 1000) / 2 });
  }

  /** The sighting to count for this event, unless its pair is already in the batch or sent recently. */
  of(event: AuditEvent, inBatch: ReadonlySet<string>): Sighting | undefined {
    if (!this.rule.enabled || event.jti === null) return undefined;
    const pair = `${event.jti}\n${event.client_ip}`;
    if (inBatch.has(pair) || this.sent.has(pair)) return undefined;
    return { hit: { rule: 'token_many_ips', subjectKind: 'jti', subject: event.jti, event }, pair, counted: `${event.jti}\n${clientIp(event)}` };
  }

  /** Once Redis has counted them: skip these pairs for half a window. */
  counted(pairs: Iterable<string>): void {
    for (const pair of pairs) this.sent.set(pair, true);
  }
}
