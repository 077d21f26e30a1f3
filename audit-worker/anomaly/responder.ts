/**
 * Acts on the incidents of a batch: bans the subject (an ip or consumer: 403 banned; a jti: the
 * token is revoked) with an escalating ttl, unless shadow or allow-listed,
 * then writes the alert and logs one line when it opens (level by severity).
 */
import type { Redis } from 'ioredis';
import type { AnomalyConfig, Severity } from '../../common/config/anomaly-schema.js';
import type { Logger } from '../../common/logger.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { banAtLeast, type BanTarget } from '../../common/security-state.js';
import type { AlertStore, AlertWrite } from './alert-store.js';
import { AllowList } from './allow-list.js';
import type { Incident } from './detector.js';

const LOG_LEVEL: Record<Severity, 'info' | 'warn' | 'error'> = { low: 'info', medium: 'warn', high: 'error', critical: 'error' };

/** Ttl of the `offence`-th ban (1-based): ban_ttl × factor^(offence-1), at most max_ttl. */
export function banTtl(firstTtl: number, offence: number, ban: AnomalyConfig['ban']): number {
  return Math.min(ban.max_ttl, firstTtl * ban.factor ** Math.min(offence - 1, 64));
}

function banTarget({ subjectKind, subject }: Incident): BanTarget {
  if (subjectKind === 'ip') return { ip: subject };
  return subjectKind === 'consumer' ? { consumer: subject } : { jti: subject };
}

export class Responder {
  private readonly allowList: AllowList;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly config: AnomalyConfig,
    private readonly alerts: Pick<AlertStore, 'upsert'>,
    private readonly logger: Logger,
  ) {
    this.allowList = new AllowList(config.allow_list);
  }

  async respond(incident: Incident): Promise<void> {
    const rule = this.config.rules[incident.rule];
    // A token is allow-listed through its consumer (a service account's token behind many NAT addresses).
    const allowListed =
      this.allowList.has(incident.subjectKind, incident.subject) || (incident.subjectKind === 'jti' && incident.consumer !== null && this.allowList.has('consumer', incident.consumer));
    let banUntil: string | null = null;
    if (rule.action === 'ban' && !rule.shadow && !allowListed && incident.crossings > 0) {
      const subject = `${incident.subjectKind}:${incident.subject}`;
      const offences = this.keys.banOffences(subject);
      const [[, offence]] = (await this.redis.multi().incr(offences).expire(offences, this.config.ban.memory).exec()) as [[null, number]];
      const ttl = banTtl(rule.ban_ttl, offence, this.config.ban);
      const wrote = await banAtLeast(this.redis, this.keys, banTarget(incident), `anomaly ${incident.rule} alert ${incident.alertId}`, ttl);
      banUntil = new Date(Date.now() + ttl * 1000).toISOString();
      this.logger.warn('anomaly ban', { code: 'anomaly_ban', rule: incident.rule, subject, alert_id: incident.alertId, offence, ttl_s: ttl, ...(wrote ? {} : { kept: 'a longer ban' }) });
    }
    const alert: AlertWrite = {
      id: incident.alertId,
      rule: incident.rule,
      severity: rule.severity,
      subject_kind: incident.subjectKind,
      subject: incident.subject,
      count: incident.count,
      window_s: rule.window,
      first_ts: incident.firstTs,
      last_ts: incident.lastTs,
      sample_event_ids: incident.sampleEventIds,
      sample_request_ids: incident.sampleRequestIds,
      action: rule.action,
      shadow: rule.shadow,
      allow_listed: allowListed,
      ban_until: banUntil,
    };
    await this.alerts.upsert(alert);
    if (incident.opened) {
      const { id, first_ts, last_ts, ban_until, ...fields } = alert;
      this.logger.log(LOG_LEVEL[rule.severity], 'anomaly alert', { code: 'anomaly_alert', alert_id: id, ...fields });
    }
  }
}
