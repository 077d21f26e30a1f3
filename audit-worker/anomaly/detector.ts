/**
 * Runs the rules over a stored batch: one Lua call (detect.lua) per batch counts every hit in
 * Redis, shared by all workers, and tells which incidents opened, continued or crossed their
 * threshold. The result is grouped per rule and subject: one incident per group and batch.
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
/** Events counted are remembered this long against redelivery (longer than any job's retries). */
const SEEN_TTL_S = 86_400;
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

type Reply = [number, number, number, string][];

export class Detector {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly config: AnomalyConfig,
  ) {
    redis.defineCommand('anomalyDetect', { lua: SCRIPT });
  }

  async run(events: readonly AuditEvent[]): Promise<Incident[]> {
    const hits: RuleHit[] = [];
    for (const event of events) {
      if (event.reason !== null) for (const hit of ruleHits(event, this.config)) hits.push(hit);
    }
    if (hits.length === 0) return [];
    const eventIndex = new Map<string, number>();
    const seenKeys: string[] = [];
    const hitKeys: string[] = [];
    const args: (string | number)[] = [];
    const newIds = new Map<string, string>();
    for (const hit of hits) {
      let index = eventIndex.get(hit.event.event_id);
      if (index === undefined) {
        seenKeys.push(this.keys.anomalySeen(hit.event.event_id));
        index = seenKeys.length;
        eventIndex.set(hit.event.event_id, index);
      }
      const rule = this.config.rules[hit.rule];
      const windowMs = rule.window * 1000;
      const ts = Date.parse(hit.event.ts);
      const window = Math.floor(ts / windowMs);
      const subject = `${hit.subjectKind}:${hit.subject}`;
      hitKeys.push(
        this.keys.anomalyCounter(hit.rule, subject, window),
        this.keys.anomalyCounter(hit.rule, subject, window - 1),
        this.keys.anomalyAlert(hit.rule, subject),
      );
      const group = `${hit.rule}\n${subject}`;
      if (!newIds.has(group)) newIds.set(group, randomUUID());
      args.push(index, rule.threshold, 1 - (ts - window * windowMs) / windowMs, rule.window * 2, this.config.cooldown, newIds.get(group)!);
    }
    const command = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>).anomalyDetect!;
    const reply = await command.call(this.redis, seenKeys.length + hitKeys.length, ...seenKeys, ...hitKeys, seenKeys.length, SEEN_TTL_S, ...args);
    return group(hits, reply);
  }
}

function group(hits: RuleHit[], reply: Reply): Incident[] {
  const incidents = new Map<string, Incident>();
  hits.forEach((hit, i) => {
    const [state, crossed, estimate, alertId] = reply[i] ?? [0, 0, 0, ''];
    if (state === 0) return;
    const key = `${hit.rule}\n${hit.subjectKind}:${hit.subject}`;
    let incident = incidents.get(key);
    if (!incident) {
      incident = {
        alertId,
        rule: hit.rule,
        subjectKind: hit.subjectKind,
        subject: hit.subject,
        opened: false,
        crossings: 0,
        count: 0,
        firstTs: hit.event.ts,
        lastTs: hit.event.ts,
        sampleEventIds: [],
        sampleRequestIds: [],
      };
      incidents.set(key, incident);
    }
    // The opening hit brings the whole window's count; every later one adds itself.
    if (state === 2) incident.opened = true;
    incident.count += state === 2 ? estimate : 1;
    incident.crossings += crossed;
    if (Date.parse(hit.event.ts) < Date.parse(incident.firstTs)) incident.firstTs = hit.event.ts;
    if (Date.parse(hit.event.ts) > Date.parse(incident.lastTs)) incident.lastTs = hit.event.ts;
    if (incident.sampleEventIds.length < MAX_SAMPLES) {
      incident.sampleEventIds.push(hit.event.event_id);
      incident.sampleRequestIds.push(hit.event.request_id);
    }
  });
  return [...incidents.values()];
}
