/** The anomaly rules as the worker runs them on each stored batch: detect, then respond. */
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import type { Logger } from '../../common/logger.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { AlertStore } from './alert-store.js';
import { Detector } from './detector.js';
import { Responder } from './responder.js';
import { VolumeSpikes } from './volume.js';

export class AnomalyRules {
  private readonly detector: Detector;
  private readonly volume: VolumeSpikes;
  private readonly responder: Responder;

  constructor(redis: Redis, keys: RedisKeys, config: AnomalyConfig, alerts: Pick<AlertStore, 'upsert'>, logger: Logger) {
    this.detector = new Detector(redis, keys, config);
    this.volume = new VolumeSpikes(redis, keys, config);
    this.responder = new Responder(redis, keys, config, alerts, logger);
  }

  /** Counts the batch's events (each once, however often the batch is delivered) and acts on its incidents. */
  async afterStore(events: readonly AuditEvent[]): Promise<void> {
    const [counted, spikes] = await Promise.all([this.detector.run(events), this.volume.run(events)]);
    for (const incident of [...counted, ...spikes]) await this.responder.respond(incident);
  }
}
