/**
 * Runs the rules over a stored batch: one Lua call (detect.lua) per batch counts every hit in
 * Redis, shared by all workers, and tells which incidents opened, continued or crossed their
 * threshold. Hits are sent grouped per rule, subject and window (three keys per group, two
 * values per hit); the result is one incident per alert and batch.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig, RuleName } from '../../common/config/anomaly-schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { ruleHits, type RuleHit, type SubjectKind } from './rules.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'audit-worker/anomaly/detect.lua'), 'utf8');
/**
 * Events counted are remembered this long against redelivery. A stored batch comes back within
 * seconds (a job orphaned by a Redis kill is recovered within ~6 s) or on the first retries of a
 * failed alert write; a day would let an attacker's refused requests fill Redis (one key each:
 * ~90 MB per 1,000 req/s held for 15 min, ~8.6 GB for a day).
 */
const SEEN_TTL_S = 900;
/** Evidence kept on an alert. */
export const MAX_SAMPLES = 10;

/** What one batch did to one rule and subject. */
export interface Incident {
  alertId: string;
  rule: RuleName;
  subjectKind: SubjectKind;
  subject: string;
  /** This batch opened the alert (else it continued an open one). */
  opened: boolean;
  /** Times the threshold was crossed in this batch: each one takes the rule's action. */
  crossings: number;
  /** Events this batch adds to the alert's count. */
  count: number;
  firstTs: string;
  lastTs: string;
  sampleEventIds: string[];
  sampleRequestIds: string[];
}

type Reply = [string, number, number, number, number[]][];

export class Detector {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly config: AnomalyConfig,
  ) {
    redis.defineCommand('anomalyDetect', { lua: SCRIPT });
  }

  async run(events: readonly AuditEvent[]): Promise<Incident[]> {
    const groups = new Map<string, { hits: RuleHit[]; window: number; weights: number[]; indices: number[] }>();
    const seenKeys: string[] = [];
    const eventIndex = new Map<string, number>();
    for (const event of events) {
      if (event.reason === null) continue;
      for (const hit of ruleHits(event, this.config)) {
        let index = eventIndex.get(event.event_id);
        if (index === undefined) {
          index = seenKeys.push(this.keys.anomalySeen(event.event_id));
          eventIndex.set(event.event_id, index);
        }
        const windowMs = this.config.rules[hit.rule].window * 1000;
        const ts = Date.parse(event.ts);
        const window = Math.floor(ts / windowMs);
        const key = `${hit.rule}\n${hit.subjectKind}:${hit.subject}\n${window}`;
        let group = groups.get(key);
        if (!group) groups.set(key, (group = { hits: [], window, weights: [], indices: [] }));
        group.hits.push(hit);
        group.indices.push(index);
        group.weights.push(1 - (ts - window * windowMs) / windowMs);
      }
    }
    if (groups.size === 0) return [];
    const groupKeys: string[] = [];
    const args: (string | number)[] = [];
    for (const { hits, window, weights, indices } of groups.values()) {
      const { rule, subjectKind, subject } = hits[0]!;
      const config = this.config.rules[rule];
      const counted = `${subjectKind}:${subject}`;
      groupKeys.push(this.keys.anomalyCounter(rule, counted, window), this.keys.anomalyCounter(rule, counted, window - 1), this.keys.anomalyAlert(rule, counted));
      args.push(config.threshold, config.window * 2, this.config.cooldown, randomUUID(), hits.length);
      indices.forEach((index, i) => args.push(index, weights[i]!));
    }
    const command = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>).anomalyDetect!;
    const reply = await command.call(this.redis, seenKeys.length + groupKeys.length, ...seenKeys, ...groupKeys, seenKeys.length, SEEN_TTL_S, ...args);
    const byEvent = new Map<number, AuditEvent>();
    for (const group of groups.values()) group.hits.forEach((hit, i) => byEvent.set(group.indices[i]!, hit.event));
    return merge([...groups.values()].map((group, i) => toIncident(group.hits[0]!, reply[i]!, byEvent)).filter((incident) => incident !== undefined));
  }
}

function toIncident(hit: RuleHit, [alertId, opened, crossings, count, indices]: Reply[number], byEvent: Map<number, AuditEvent>): Incident | undefined {
  if (alertId === '' || indices.length === 0) return undefined;
  const counted = indices.map((index) => byEvent.get(index)!);
  const times = counted.map((event) => Date.parse(event.ts));
  const samples = counted.slice(0, MAX_SAMPLES);
  return {
    alertId,
    rule: hit.rule,
    subjectKind: hit.subjectKind,
    subject: hit.subject,
    opened: opened === 1,
    crossings,
    count,
    firstTs: new Date(Math.min(...times)).toISOString(),
    lastTs: new Date(Math.max(...times)).toISOString(),
    sampleEventIds: samples.map((event) => event.event_id),
    sampleRequestIds: samples.map((event) => event.request_id),
  };
}

/** One incident per alert: the groups of one rule and subject in two windows of one batch merge. */
function merge(incidents: Incident[]): Incident[] {
  const byAlert = new Map<string, Incident>();
  for (const incident of incidents) {
    const seen = byAlert.get(incident.alertId);
    if (!seen) {
      byAlert.set(incident.alertId, incident);
      continue;
    }
    seen.opened ||= incident.opened;
    seen.crossings += incident.crossings;
    seen.count += incident.count;
    if (incident.firstTs < seen.firstTs) seen.firstTs = incident.firstTs;
    if (incident.lastTs > seen.lastTs) seen.lastTs = incident.lastTs;
    seen.sampleEventIds = [...seen.sampleEventIds, ...incident.sampleEventIds].slice(0, MAX_SAMPLES);
    seen.sampleRequestIds = [...seen.sampleRequestIds, ...incident.sampleRequestIds].slice(0, MAX_SAMPLES);
  }
  return [...byAlert.values()];
}
