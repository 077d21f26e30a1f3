/** The security event contract, its builder, the filter of GET /v1/security-events and the ban key patterns. */
import { expect } from 'chai';
import { EventFilterError } from '../../audit-worker/event-filter.js';
import { parseSecurityEventFilter } from '../../audit-worker/security-event-filter.js';
import { RedisKeys } from '../../common/redis-keys.js';
import { adminCliActor, ruleActor, securityEvent, securityEventSchema, SECURITY_TEXT_LIMITS, type SecurityEvent } from '../../common/security-event.js';

const NOW = Date.parse('2026-03-04T05:06:07.000Z');
const clock = () => NOW;
const ALERT = '6f1c1c4e-8a53-4f4e-9d3b-2f4a7f2d9c11';

/** The paths and messages of the schema's issues for `event` (empty when it is valid). */
function issues(event: unknown): string[] {
  const result = securityEventSchema.safeParse(event);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('security event', () => {
  const base = (): SecurityEvent => securityEvent({ kind: 'ban', actor: 'admin-cli:ops', target: { ip: '203.0.113.9' }, reason: 'credential stuffing', ttlSeconds: 3600, now: clock });

  it('builds a ban with its until at now + ttl, subject from the target, no alert', () => {
    const event = base();
    expect(event).to.include({ ts: '2026-03-04T05:06:07.000Z', kind: 'ban', actor: 'admin-cli:ops', subject_kind: 'ip', subject: '203.0.113.9', reason: 'credential stuffing', until: '2026-03-04T06:06:07.000Z', alert_id: null });
    expect(event.event_id).to.match(/^[0-9a-f-]{36}$/);
    expect(issues(event)).to.deep.equal([]);
  });

  it('builds an automatic ban of a rule with its alert, a ban until lifted, and unbans and revocations of each subject kind', () => {
    const auto = securityEvent({ kind: 'ban', actor: ruleActor('auth_failure_burst'), target: { ip: '::1' }, reason: 'anomaly auth_failure_burst', ttlSeconds: 600, alertId: ALERT, now: clock });
    expect(auto).to.include({ actor: 'rule:auth_failure_burst', alert_id: ALERT, until: '2026-03-04T05:16:07.000Z' });
    expect(securityEvent({ kind: 'ban', actor: 'a', target: { consumer: 'demo:alice' }, reason: 'r', now: clock })).to.include({ subject_kind: 'consumer', subject: 'demo:alice', until: null });
    expect(securityEvent({ kind: 'revoke', actor: 'a', target: { jti: 'j-1' }, reason: 'r', ttlSeconds: 60, now: clock })).to.include({ subject_kind: 'jti', subject: 'j-1', until: '2026-03-04T05:07:07.000Z' });
    // An unban ends a ban: it has no until of its own, whatever ttl is passed.
    expect(securityEvent({ kind: 'unban', actor: 'a', target: { ip: '10.0.0.1' }, reason: 'r', ttlSeconds: 60, now: clock }).until).to.equal(null);
  });

  it('names the admin CLI actor after the OS user', () => {
    expect(adminCliActor()).to.match(/^admin-cli:.+/);
  });

  it('requires a reason, one line, within its limit', () => {
    const long = 'x'.repeat(SECURITY_TEXT_LIMITS.reason + 1);
    expect(issues({ ...base(), reason: '' })).to.deep.equal(['reason: must not be empty']);
    expect(issues({ ...base(), reason: long })).to.deep.equal([`reason: must be at most ${SECURITY_TEXT_LIMITS.reason} characters`]);
    expect(issues({ ...base(), reason: 'two\nlines' })).to.deep.equal(['reason: must not contain control characters']);
    expect(issues({ ...base(), reason: 'x'.repeat(SECURITY_TEXT_LIMITS.reason) })).to.deep.equal([]);
    const { reason: _, ...withoutReason } = base();
    expect(issues(withoutReason)).to.have.length(1);
  });

  it('refuses a reason that holds a token', () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    expect(issues({ ...base(), reason: `leaked: ${token}` })).to.deep.equal(['reason: must not contain a token (it would be stored and shown to every admin)']);
    expect(() => securityEvent({ kind: 'revoke', actor: 'a', target: { jti: 'j' }, reason: token })).to.throw(/must not contain a token/);
  });

  it('bounds actor and subject, and refuses control characters in them', () => {
    expect(issues({ ...base(), actor: 'a'.repeat(SECURITY_TEXT_LIMITS.actor + 1) })).to.deep.equal([`actor: must be at most ${SECURITY_TEXT_LIMITS.actor} characters`]);
    expect(issues({ ...base(), subject: 's'.repeat(SECURITY_TEXT_LIMITS.subject + 1) })).to.deep.equal([`subject: must be at most ${SECURITY_TEXT_LIMITS.subject} characters`]);
    expect(issues({ ...base(), subject: 'a\u0000b' })).to.deep.equal(['subject: must not contain control characters']);
  });

  it('refuses unknown kinds, subject kinds, fields and malformed ids and times', () => {
    expect(issues({ ...base(), kind: 'mute' })[0]).to.match(/^kind: /);
    expect(issues({ ...base(), subject_kind: 'planet' })[0]).to.match(/^subject_kind: /);
    expect(issues({ ...base(), token: 'x' })[0]).to.match(/^: Unrecognized key: "token"/);
    expect(issues({ ...base(), event_id: 'nope' })[0]).to.match(/^event_id: /);
    expect(issues({ ...base(), alert_id: 'nope' })[0]).to.match(/^alert_id: /);
    expect(issues({ ...base(), until: 'tomorrow' })[0]).to.match(/^until: /);
    expect(issues({ ...base(), ts: 1 })[0]).to.match(/^ts: /);
  });
});

describe('security event filter', () => {
  const errorOf = (input: Record<string, unknown>): string => {
    try {
      parseSecurityEventFilter(input, clock);
    } catch (err) {
      expect(err).to.be.instanceOf(EventFilterError);
      return (err as Error).message;
    }
    expect.fail('expected the filter to be refused');
  };

  it('defaults the limit to 100 and reads since against the injected clock', () => {
    expect(parseSecurityEventFilter({}, clock)).to.deep.equal({ limit: 100 });
    expect(parseSecurityEventFilter({ kind: 'unban', subject: '::1', actor: 'admin-cli:ops', since: '1h', limit: '5' }, clock)).to.deep.equal({
      kind: 'unban', subject: '::1', actor: 'admin-cli:ops', since: '2026-03-04T04:06:07.000Z', limit: 5,
    });
  });

  it('refuses each bad parameter by name', () => {
    expect(errorOf({ kind: 'mute' })).to.equal('kind: Invalid option: expected one of "ban"|"unban"|"revoke"|"admin_query"|"limit_set"|"limit_clear"|"user_add"|"user_enable"');
    expect(errorOf({ subject: '' })).to.equal('subject: must not be empty');
    expect(errorOf({ actor: '' })).to.equal('actor: must not be empty');
    expect(errorOf({ since: 'yesterday' })).to.match(/^since: must be an ISO timestamp/);
    expect(errorOf({ limit: '0' })).to.match(/^limit: /);
    expect(errorOf({ limit: '1001' })).to.match(/^limit: /);
    expect(errorOf({ rule: 'x' })).to.equal('unknown parameter: rule');
  });
});

describe('ban key patterns', () => {
  it('match the keys the ban builders write and give back their decoded subjects', () => {
    const keys = new RedisKeys('gw');
    const [ip, consumer, jti] = keys.banPatterns();
    expect(ip).to.include({ kind: 'ip', match: 'gw:ban:ip:*' });
    expect(consumer).to.include({ kind: 'consumer', match: 'gw:ban:consumer:*' });
    expect(jti).to.include({ kind: 'jti', match: 'gw:revoked:jti:*' });
    expect(ip!.subjectOf(keys.banIp('2001:db8::1'))).to.equal('2001:db8::1');
    expect(consumer!.subjectOf(keys.banConsumer('demo:alice'))).to.equal('demo:alice');
    expect(jti!.subjectOf(keys.revokedJti('a:b*c'))).to.equal('a:b*c');
  });

  it('escape glob characters of the prefix', () => {
    expect(new RedisKeys('gw[1]*?').banPatterns()[0]!.match).to.equal('gw\\[1\\]\\*\\?:ban:ip:*');
  });
});
