/**
 * volume_spike: each consumer's requests in a batch are summed here and sent to volume.lua
 * once per consumer and batch (one Redis call per batch for the whole rule), which compares the
 * consumer's window count with its own moving baseline. A redelivered batch is recognised by
 * its first event of that consumer and counts nothing.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { MAX_SAMPLES, SEEN_TTL_S, type Incident } from './detector.js';

const SCRIPT = readFileSync(join(PROJECT_ROOT, 'audit-worker/anomaly/volume.lua'), 'utf8');

type Reply = [string, number, number, number][];

interface ConsumerBatch {
  events: AuditEvent[];
  firstTs: number;
  lastTs: number;
}

export class VolumeSpikes {
  private readonly rule: AnomalyConfig['rules']['volume_spike'];

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly config: AnomalyConfig,
  ) {
    this.rule = config.rules.volume_spike;
    redis.defineCommand('anomalyVolume', { lua: SCRIPT });
  }

  async run(events: readonly AuditEvent[]): Promise<Incident[]> {
    if (!this.rule.enabled || events.length === 0) return [];
    const byConsumer = new Map<string, ConsumerBatch>();
    let latest = 0;
    for (const event of events) {
      if (event.consumer === null) continue;
      const ts = Date.parse(event.ts);
      if (ts > latest) latest = ts;
      const batch = byConsumer.get(event.consumer);
      if (!batch) byConsumer.set(event.consumer, { events: [event], firstTs: ts, lastTs: ts });
      else {
        batch.events.push(event);
        if (ts < batch.firstTs) batch.firstTs = ts;
        if (ts > batch.lastTs) batch.lastTs = ts;
      }
    }
    if (byConsumer.size === 0) return [];
    const windows = Math.max(1, this.rule.baseline / this.rule.window);
    const keys: string[] = [];
    const args: (string | number)[] = [
      Math.floor(latest / (this.rule.window * 1000)),
      this.rule.threshold,
      this.rule.factor,
      2 / (windows + 1),
      this.rule.baseline * 4,
      SEEN_TTL_S,
      this.config.cooldown,
    ];
    for (const [consumer, batch] of byConsumer) {
      keys.push(this.keys.anomalySeen(`volume:${batch.events[0]!.event_id}`), this.keys.anomalyVolume(consumer), this.keys.anomalyAlert('volume_spike', `consumer:${consumer}`));
      args.push(randomUUID(), batch.events.length);
    }
    const command = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>).anomalyVolume!;
    const reply = await command.call(this.redis, keys.length, ...keys, ...args);
    const incidents: Incident[] = [];
    [...byConsumer].forEach(([consumer, batch], i) => {
      const [alertId, opened, crossings, count] = reply[i]!;
      if (alertId === '' || count === 0) return;
      const samples = batch.events.slice(0, MAX_SAMPLES);
      incidents.push({
        alertId,
        rule: 'volume_spike',
        subjectKind: 'consumer',
        subject: consumer,
        consumer,
        opened: opened === 1,
        crossings,
        count,
        firstTs: new Date(batch.firstTs).toISOString(),
        lastTs: new Date(batch.lastTs).toISOString(),
        sampleEventIds: samples.map((event) => event.event_id),
        sampleRequestIds: samples.map((event) => event.request_id),
      });
    });
    return incidents;
  }
}
