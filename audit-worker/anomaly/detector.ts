/**
 * Runs the event-counting rules over a stored batch: one Lua call (detect.lua) per batch claims
 * the batch (a batch seen before counts nothing) and counts every hit in
 * Redis, shared by all workers, and tells which incidents opened, continued or crossed their
 * threshold. Hits are sent grouped per rule, subject and window (three keys per group, two
 * values per hit); the result is one incident per alert and batch.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../../common/redis.js';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig, RuleName } from '../../common/config/anomaly-schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { reasonHits, type RuleHit, type SubjectKind } from './rules.js';
import { Sightings } from './sightings.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'audit-worker/anomaly/detect.lua'), 'utf8');
/**
 * Batches counted are remembered this long against redelivery. A stored batch comes back within
 * seconds (a job orphaned by a Redis kill is recovered within ~6 s) or on the first retries of a
 * failed alert write.
 */
const SEEN_TTL_S = 900;
/** Incidents held for a batch outlive the job's retries (AUDIT_JOB_OPTIONS: about 36 hours). */
const HELD_TTL_S = 2 * 86400;
/** Evidence kept on an alert. */
export const MAX_SAMPLES = 10;

/** What one batch did to one rule and subject. */
export interface Incident {
  alertId: string;
  rule: RuleName;
  subjectKind: SubjectKind;
  subject: string;
  /** The consumer of the first counted event (a jti's owner, for the allow-list). */
  consumer: string | null;
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

type GroupReply = [string, number, number, number, number[]];
/** 1 and the groups for a batch counted now; the batch key's value for one claimed before. */
type Reply = [1, ...GroupReply[]] | [string];

/** The hits of one rule, subject and window in a batch, with each hit's seen-key index and weight. */
interface Group {
  hits: RuleHit[];
  window: number;
  weights: number[];
  indices: number[];
}

export class Detector {
  private readonly sightings: Sightings;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    readonly config: AnomalyConfig,
  ) {
    redis.defineCommand('anomalyDetect', { lua: SCRIPT });
    this.sightings = new Sightings(config);
  }

  /**
   * Counts a batch's rule hits. A batch comes back whole (a redelivered job, a spooled batch
   * replayed, a failed job retried), so its first event names it, and a batch with hits is
   * claimed by the same atomic call that counts them. A batch claimed before counts nothing; its
   * incidents are then the ones held for it, which acting on failed last time, taken by this call.
   */
  async run(events: readonly AuditEvent[]): Promise<Incident[]> {
    if (events.length === 0) return [];
    const batchKey = this.batchKey(events);
    const groups = new Map<string, Group>();
    const seenKeys = [batchKey];
    const seenTtls = [SEEN_TTL_S];
    const seenIndex = new Map([[batchKey, 1]]);
    const pairs = new Set<string>();
    const add = (hit: RuleHit, seenKey: string, seenTtl: number): void => {
      let index = seenIndex.get(seenKey);
      if (index === undefined) {
        index = seenKeys.push(seenKey);
        seenTtls.push(seenTtl);
        seenIndex.set(seenKey, index);
      }
      const windowMs = this.config.rules[hit.rule].window * 1000;
      const ts = Date.parse(hit.event.ts);
      const window = Math.floor(ts / windowMs);
      const key = `${hit.rule}\n${hit.subjectKind}:${hit.subject}\n${window}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { hits: [], window, weights: [], indices: [] }));
      group.hits.push(hit);
      group.indices.push(index);
      group.weights.push(1 - (ts - window * windowMs) / windowMs);
    };
    for (const event of events) {
      if (event.reason !== null) for (const hit of reasonHits(event, this.config)) add(hit, batchKey, SEEN_TTL_S);
      const sighting = this.sightings.of(event, pairs);
      if (sighting) {
        pairs.add(sighting.pair);
        add(sighting.hit, this.keys.anomalySighting(sighting.counted), this.config.rules.token_many_ips.window);
      }
    }
    // No hit: nothing to count, and nothing to claim (most batches of ordinary traffic).
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
    const [claim, ...reply] = await command.call(this.redis, seenKeys.length + groupKeys.length, ...seenKeys, ...groupKeys, seenKeys.length, ...seenTtls, ...args);
    if (claim !== 1) return claim === '1' ? [] : (JSON.parse(claim) as Incident[]);
    this.sightings.counted(pairs);
    const incidents = [...groups.values()].map((group, i) => toIncident(group.hits, reply[i]!)).filter((incident) => incident !== undefined);
    return merge(incidents);
  }

  /**
   * Keeps incidents of a claimed batch that could not be acted on in its key: the next delivery
   * of the batch (the job's retry) takes them, and only that one. Kept past the job's whole
   * retry span.
   */
  async hold(events: readonly AuditEvent[], incidents: readonly Incident[]): Promise<void> {
    await this.redis.set(this.batchKey(events), JSON.stringify(incidents), 'EX', HELD_TTL_S);
  }

  private batchKey(events: readonly AuditEvent[]): string {
    return this.keys.anomalySeen(`batch:${events[0]!.event_id}`);
  }
}

function toIncident(hits: RuleHit[], [alertId, opened, crossings, count, positions]: GroupReply): Incident | undefined {
  if (alertId === '' || positions.length === 0) return undefined;
  const hit = hits[0]!;
  const counted = positions.map((position) => hits[position - 1]!.event);
  const times = counted.map((event) => Date.parse(event.ts));
  const samples = counted.slice(0, MAX_SAMPLES);
  return {
    alertId,
    rule: hit.rule,
    subjectKind: hit.subjectKind,
    subject: hit.subject,
    consumer: counted[0]!.consumer,
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
