/**
 * An anomaly rule's ban: the escalating ttl, the ban itself (never shortening a longer one) and
 * its security event (actor `rule:<name>`, citing the alert). A held incident acted on again
 * (its job retried) finds its ban done: the offence is counted once (the ban's marker keeps it)
 * and the security event keeps its id (the store skips it), so a retry neither escalates nor
 * audits twice.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../../common/redis.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { ruleActor, securityEvent, type SecurityEvent } from '../../common/security-event.js';
import { banAtLeast, type BanTarget } from '../../common/security-state.js';
import type { Incident } from './detector.js';

/** Ttl of the `offence`-th ban (1-based): ban_ttl × factor^(offence-1), at most max_ttl. */
export function banTtl(firstTtl: number, offence: number, ban: AnomalyConfig['ban']): number {
  return Math.min(ban.max_ttl, firstTtl * ban.factor ** Math.min(offence - 1, 64));
}

/** The offence number of this ban: counted once per ban id, however often the ban is applied. */
const COUNT_OFFENCE = `
local counted = redis.call('GET', KEYS[2])
if counted then return tonumber(counted) end
local offence = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], offence, 'EX', ARGV[1])
return offence`;

/** A UUID (version 8: custom) naming one incident's ban, the same each time the incident is acted on. */
function banId(incident: Incident): string {
  const hex = createHash('sha256').update(`${incident.alertId}\n${incident.firstTs}\n${incident.lastTs}\n${incident.count}\n${incident.sampleEventIds[0] ?? ''}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function banTarget({ subjectKind, subject }: Incident): BanTarget {
  if (subjectKind === 'ip') return { ip: subject };
  return subjectKind === 'consumer' ? { consumer: subject } : { jti: subject };
}

/** Where a ban's security event is stored (the worker's SecurityEventStore). */
export interface SecurityEventSink {
  insert(events: readonly SecurityEvent[]): Promise<unknown>;
}

export interface AppliedBan {
  offence: number;
  ttl: number;
  until: string;
  /** False when a longer ban was there and kept. */
  wrote: boolean;
}

export class RuleBans {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly config: AnomalyConfig,
    private readonly securityEvents: SecurityEventSink,
  ) {}

  async apply(incident: Incident): Promise<AppliedBan> {
    const id = banId(incident);
    const offences = this.keys.banOffences(`${incident.subjectKind}:${incident.subject}`);
    const offence = (await this.redis.eval(COUNT_OFFENCE, 2, offences, this.keys.anomalyBanMarker(id), this.config.ban.memory)) as number;
    const ttl = banTtl(this.config.rules[incident.rule].ban_ttl, offence, this.config.ban);
    const target = banTarget(incident);
    const actor = ruleActor(incident.rule);
    const reason = `anomaly ${incident.rule} alert ${incident.alertId} (offence ${offence})`;
    const wrote = await banAtLeast(this.redis, this.keys, target, reason, ttl, actor);
    const event = securityEvent({ kind: 'ban', actor, target, reason, ttlSeconds: ttl, alertId: incident.alertId });
    await this.securityEvents.insert([{ ...event, event_id: id }]);
    return { offence, ttl, until: event.until!, wrote };
  }
}
