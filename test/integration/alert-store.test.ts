/** audit_alerts on both stores: created by EventStore.migrate, upserts add up, filters and ack. */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { parseAlertFilter } from '../../audit-worker/anomaly/alert-filter.js';
import { AlertStore, type AlertWrite } from '../../audit-worker/anomaly/alert-store.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import type { SqlClient } from '../../audit-worker/store/sql-client.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';


function part(overrides: Partial<AlertWrite>): AlertWrite {
  return {
    id: randomUUID(),
    rule: 'auth_failure_burst',
    severity: 'medium',
    subject_kind: 'ip',
    subject: '203.0.113.9',
    count: 30,
    window_s: 60,
    first_ts: '2026-01-02T03:04:00.000Z',
    last_ts: '2026-01-02T03:04:30.000Z',
    sample_event_ids: [randomUUID()],
    sample_request_ids: ['r-1'],
    action: 'ban',
    shadow: false,
    allow_listed: false,
    ban_until: '2026-01-02T03:14:30.000Z',
    ...overrides,
  };
}

for (const backend of STORE_BACKENDS) {
  describe(`AlertStore on ${backend.name}`, function () {
    this.timeout(30_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let alerts: AlertStore;

    before(async () => {
      ({ sql, cleanup } = await backend.open());
      await new EventStore(sql).migrate();
      alerts = new AlertStore(sql);
    });

    after(async () => {
      await cleanup?.();
    });

    it('merges two writes of one alert, in either order, into one row that adds them up', async () => {
      const id = randomUUID();
      const later = part({ id, count: 2, first_ts: '2026-01-02T03:05:00.000Z', last_ts: '2026-01-02T03:05:10.000Z', sample_request_ids: ['r-2'], ban_until: null });
      const opening = part({ id });
      await alerts.upsert(later);
      await alerts.upsert(opening);
      const [alert, ...more] = await alerts.query(parseAlertFilter({ subject: '203.0.113.9' }));
      expect(more).to.have.length(0);
      expect(alert).to.deep.include({
        id,
        count: 32,
        first_ts: '2026-01-02T03:04:00.000Z',
        last_ts: '2026-01-02T03:05:10.000Z',
        sample_event_ids: [...later.sample_event_ids, ...opening.sample_event_ids],
        sample_request_ids: ['r-2', 'r-1'],
        ban_until: '2026-01-02T03:14:30.000Z',
        status: 'open',
        acked_at: null,
      });
    });

    it('keeps at most 10 samples', async () => {
      const id = randomUUID();
      for (let i = 0; i < 3; i++) {
        await alerts.upsert(part({ id, subject: '198.51.100.1', sample_event_ids: Array.from({ length: 4 }, () => randomUUID()), sample_request_ids: ['a', 'b', 'c', 'd'] }));
      }
      const [alert] = await alerts.query(parseAlertFilter({ subject: '198.51.100.1' }));
      expect(alert!.sample_event_ids).to.have.length(10);
      expect(alert!.sample_request_ids).to.have.length(10);
      expect(alert!.count).to.equal(90);
    });

    it('acks an alert, filters on status, rule and since, and answers undefined for an unknown id', async () => {
      const revoked = part({ rule: 'revoked_token_use', severity: 'high', subject_kind: 'jti', subject: 'jti-1', count: 1, action: 'alert', ban_until: null, last_ts: '2026-02-01T00:00:00.000Z' });
      await alerts.upsert(revoked);
      const acked = await alerts.ack(revoked.id);
      expect(acked).to.include({ id: revoked.id, status: 'acked' });
      expect(acked!.acked_at).to.match(/^\d{4}-\d\d-\d\dT/);
      expect((await alerts.query(parseAlertFilter({ status: 'acked' }))).map((a) => a.id)).to.deep.equal([revoked.id]);
      expect((await alerts.query(parseAlertFilter({ status: 'open', rule: 'revoked_token_use' })))).to.have.length(0);
      expect((await alerts.query(parseAlertFilter({ since: '2026-01-15T00:00:00Z' }))).map((a) => a.id)).to.deep.equal([revoked.id]);
      expect(await alerts.ack(randomUUID())).to.equal(undefined);
    });
  });
}
