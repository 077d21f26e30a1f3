/**
 * The anomaly rules as the worker runs them: the event-counting rules on each stored batch
 * (detect, then respond), volume_spike on the sums of each second (start() runs it; flush()
 * runs it now).
 */
import type { RedisClient } from '../../common/redis.js';
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import type { Logger } from '../../common/logger.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { AlertStore } from './alert-store.js';
import { Detector, type Incident } from './detector.js';
import { Responder } from './responder.js';
import { RuleBans, type SecurityEventSink } from './rule-ban.js';
import { VOLUME_FLUSH_MS, VolumeSpikes } from './volume.js';

export class AnomalyRules {
  private readonly detector: Detector;
  private readonly volume: VolumeSpikes;
  private readonly responder: Responder;
  private timer: NodeJS.Timeout | undefined;
  /** volume_spike incidents not acted on yet (the last try failed): the next send acts on them first. */
  private unsettled: Incident[] = [];
  /** The last send, so sends run one at a time; a failed one does not stop the next. */
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    redis: RedisClient,
    keys: RedisKeys,
    config: AnomalyConfig,
    stores: { alerts: Pick<AlertStore, 'upsert'>; securityEvents: SecurityEventSink },
    private readonly logger: Logger,
  ) {
    this.detector = new Detector(redis, keys, config);
    this.volume = new VolumeSpikes(redis, keys, config);
    this.responder = new Responder(config, new RuleBans(redis, keys, config, stores.securityEvents), stores.alerts, logger);
  }

  /**
   * Counts the batch's events (each once, however often the batch is delivered) and acts on its
   * incidents; `newToStore`: the store had none of its events before. Should acting on one fail (the database down while its alert is written), it and
   * the ones after it are held in the batch's claim and the error thrown: the job's retry acts on
   * them, once, rather than finding the batch counted and the alert lost.
   */
  /** Alerts opened so far, by rule. */
  get raised(): ReadonlyMap<string, number> {
    return this.responder.raised;
  }

  async afterStore(events: readonly AuditEvent[], newToStore = true): Promise<void> {
    // volume_spike counts a batch the store took as new: a redelivered one, or its retry after
    // it was stored, adds nothing (that retry's counts are lost: a second's worth at most).
    if (newToStore) this.volume.add(events);
    const incidents = await this.detector.run(events);
    for (const [i, incident] of incidents.entries()) {
      try {
        await this.responder.respond(incident);
      } catch (err) {
        await this.detector.hold(events, incidents.slice(i));
        throw err;
      }
    }
  }

  /** Sends volume_spike's sums every second. */
  start(): void {
    this.timer ??= setInterval(() => {
      this.flush().catch((err: Error) => this.logger.warn('volume_spike counts not sent, kept for the next try', { code: 'anomaly_volume_failed', error: err.message }));
    }, VOLUME_FLUSH_MS);
  }

  /** Sends volume_spike's sums now and acts on its incidents (one send at a time). */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .catch(() => undefined)
      .then(async () => {
        const incidents = [...this.unsettled, ...(await this.volume.flush())];
        this.unsettled = [];
        for (const [i, incident] of incidents.entries()) {
          try {
            await this.responder.respond(incident);
          } catch (err) {
            this.unsettled = incidents.slice(i);
            throw err;
          }
        }
      });
    return this.flushing;
  }

  /** Stops the timer and sends what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
