/**
 * Acts on the incidents of a batch: bans the subject (rule-ban.ts: an ip or consumer, 403
 * banned; a jti, the token revoked) unless shadow or allow-listed, then writes the alert and
 * logs one line when it opens (level by severity).
 */
import type { AnomalyConfig, Severity } from '../../common/config/anomaly-schema.js';
import type { Logger } from '../../common/logger.js';
import type { AlertStore, AlertWrite } from './alert-store.js';
import { AllowList } from './allow-list.js';
import type { Incident } from './detector.js';
import type { RuleBans } from './rule-ban.js';

const LOG_LEVEL: Record<Severity, 'info' | 'warn' | 'error'> = { low: 'info', medium: 'warn', high: 'error', critical: 'error' };

export class Responder {
  private readonly allowList: AllowList;
  /** Alerts opened so far, by rule (the metrics read them). */
  readonly raised = new Map<string, number>();

  constructor(
    private readonly config: AnomalyConfig,
    private readonly bans: RuleBans,
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
      const { offence, ttl, until, wrote } = await this.bans.apply(incident);
      banUntil = until;
      const subject = `${incident.subjectKind}:${incident.subject}`;
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
      this.raised.set(incident.rule, (this.raised.get(incident.rule) ?? 0) + 1);
      const { id, first_ts, last_ts, ban_until, ...fields } = alert;
      this.logger.log(LOG_LEVEL[rule.severity], 'anomaly alert', { code: 'anomaly_alert', alert_id: id, ...fields });
    }
  }
}
