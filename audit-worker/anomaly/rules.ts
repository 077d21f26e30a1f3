/**
 * What the event-counting rules count: an audit event → the rules it matches and their subject.
 * Pure and cheap (one switch on the reason), since it runs on every event the worker stores.
 * token_many_ips (distinct ips per token) is in sightings.ts, volume_spike in volume.ts.
 */
import type { AuditEvent } from '../../common/audit-event.js';
import type { AnomalyConfig, RuleName } from '../../common/config/anomaly-schema.js';
import { canonicalIp } from '../../common/ip-address.js';

export type SubjectKind = 'ip' | 'consumer' | 'jti';

export interface RuleHit {
  rule: RuleName;
  subjectKind: SubjectKind;
  subject: string;
  event: AuditEvent;
}

export const clientIp = (event: AuditEvent): string => canonicalIp(event.client_ip) ?? event.client_ip;

/** The rule hits of one refused event under `config` (none for most events). */
export function reasonHits(event: AuditEvent, config: AnomalyConfig): RuleHit[] {
  const { rules } = config;
  switch (event.reason) {
    case 'token_invalid':
    case 'token_missing':
      if (!rules.auth_failure_burst.enabled) return [];
      return [{ rule: 'auth_failure_burst', subjectKind: 'ip', subject: clientIp(event), event }];
    case 'token_revoked':
      if (!rules.revoked_token_use.enabled) return [];
      // A token revoked by id names its jti; one revoked with all its consumer's tokens may have none.
      if (event.jti !== null) return [{ rule: 'revoked_token_use', subjectKind: 'jti', subject: event.jti, event }];
      if (event.consumer !== null) return [{ rule: 'revoked_token_use', subjectKind: 'consumer', subject: event.consumer, event }];
      return [];
    case 'rate_limited':
      if (!rules.rate_limit_storm.enabled) return [];
      if (event.consumer !== null) return [{ rule: 'rate_limit_storm', subjectKind: 'consumer', subject: event.consumer, event }];
      return [{ rule: 'rate_limit_storm', subjectKind: 'ip', subject: clientIp(event), event }];
    default:
      return [];
  }
}
