/**
 * volume_spike: each consumer's requests are summed in this worker and sent to volume.lua once
 * a second (one Redis call for every consumer seen in that second, whatever the number of
 * batches), which compares the consumer's window count with its own moving baseline. Only
 * batches the detector claimed as new are added, so a redelivered batch counts nothing. A
 * failed send keeps the sums for the next one; a worker that dies loses at most its last
 * second of counts (a spike is thousands of requests; the rule's alert may come a second late).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../../common/redis.js';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { MAX_SAMPLES, type Incident } from './detector.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'audit-worker/anomaly/volume.lua'), 'utf8');
export const VOLUME_FLUSH_MS = 1_000;

type Reply = [string, number, number, number][];

/** A consumer's requests in one window, since the last send. */
interface Sum {
  consumer: string;
  window: number;
  n: number;
  firstTs: number;
  lastTs: number;
  samples: AuditEvent[];
}

export class VolumeSpikes {
  private readonly rule: AnomalyConfig['rules']['volume_spike'];
  private readonly windowMs: number;
  private sums = new Map<string, Sum>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly config: AnomalyConfig,
  ) {
    this.rule = config.rules.volume_spike;
    this.windowMs = this.rule.window * 1000;
    redis.defineCommand('anomalyVolume', { lua: SCRIPT });
  }

  /** Adds a new batch's requests to the sums. */
  add(events: readonly AuditEvent[]): void {
    if (!this.rule.enabled) return;
    for (const event of events) {
      if (event.consumer === null) continue;
      const ts = Date.parse(event.ts);
      const window = Math.floor(ts / this.windowMs);
      const key = `${window}\n${event.consumer}`;
      const sum = this.sums.get(key);
      if (!sum) {
        this.sums.set(key, { consumer: event.consumer, window, n: 1, firstTs: ts, lastTs: ts, samples: [event] });
        continue;
      }
      sum.n += 1;
      if (ts < sum.firstTs) sum.firstTs = ts;
      if (ts > sum.lastTs) sum.lastTs = ts;
      if (sum.samples.length < MAX_SAMPLES) sum.samples.push(event);
    }
  }

  /** Sends the sums; the incidents of consumers whose alert is open or opened. On failure the sums are kept. */
  async flush(): Promise<Incident[]> {
    if (this.sums.size === 0) return [];
    const sums = [...this.sums.values()];
    this.sums = new Map();
    const keys: string[] = [];
    const args: (string | number)[] = [this.rule.threshold, this.rule.factor, 2 / (Math.max(1, this.rule.baseline / this.rule.window) + 1), this.rule.baseline * 4, this.config.cooldown];
    for (const sum of sums) {
      keys.push(this.keys.anomalyVolume(sum.consumer), this.keys.anomalyAlert('volume_spike', `consumer:${sum.consumer}`));
      args.push(sum.window, sum.n, randomUUID());
    }
    let reply: Reply;
    try {
      const command = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>).anomalyVolume!;
      reply = await command.call(this.redis, keys.length, ...keys, ...args);
    } catch (err) {
      for (const sum of sums) this.putBack(sum);
      throw err;
    }
    const incidents: Incident[] = [];
    sums.forEach((sum, i) => {
      const [alertId, opened, crossings, count] = reply[i]!;
      if (alertId === '') return;
      incidents.push({
        alertId,
        rule: 'volume_spike',
        subjectKind: 'consumer',
        subject: sum.consumer,
        consumer: sum.consumer,
        opened: opened === 1,
        crossings,
        count,
        firstTs: new Date(sum.firstTs).toISOString(),
        lastTs: new Date(sum.lastTs).toISOString(),
        sampleEventIds: sum.samples.map((event) => event.event_id),
        sampleRequestIds: sum.samples.map((event) => event.request_id),
      });
    });
    return incidents;
  }

  private putBack(sum: Sum): void {
    const key = `${sum.window}\n${sum.consumer}`;
    const newer = this.sums.get(key);
    if (!newer) return void this.sums.set(key, sum);
    newer.n += sum.n;
    newer.firstTs = Math.min(newer.firstTs, sum.firstTs);
    newer.lastTs = Math.max(newer.lastTs, sum.lastTs);
    newer.samples = [...sum.samples, ...newer.samples].slice(0, MAX_SAMPLES);
  }
}
