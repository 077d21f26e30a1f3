/**
 * The alert webhook against real stores and a real HTTP receiver: the outbox rows AlertStore
 * writes with each state change (PostgreSQL and PGlite, racing writers on PostgreSQL), and the
 * delivery loop's retries, failures, signatures, shutdown and two loops sharing one store.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAlertFilter } from '../../audit-worker/anomaly/alert-filter.js';
import { AlertStore, type AlertWrite } from '../../audit-worker/anomaly/alert-store.js';
import { WebhookDelivery, type WebhookDeliveryOptions } from '../../audit-worker/anomaly/webhook-delivery.js';
import { WebhookOutbox } from '../../audit-worker/anomaly/webhook-outbox.js';
import { verifyWebhookSignature } from '../../audit-worker/anomaly/webhook-signature.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually, freePort } from '../helpers/net.js';
import { dropSchema, PG_URL, uniqueSchema } from '../helpers/postgres.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';

const SECRET = 'webhook-test-secret-0123456789abcdef';

interface OutboxRow {
  id: string;
  alert_id: string;
  state: string;
  status: string;
  attempts: number;
  last_error: string | null;
  alert: Record<string, unknown>;
}

function alertWrite(overrides: Partial<AlertWrite> = {}): AlertWrite {
  return {
    id: randomUUID(),
    rule: 'auth_failure_burst',
    severity: 'medium',
    subject_kind: 'ip',
    subject: '203.0.113.7',
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

async function outboxRows(sql: SqlClient, alertId?: string): Promise<OutboxRow[]> {
  const where = alertId ? `WHERE alert_id = $1` : '';
  return (await sql.query<OutboxRow>(`SELECT id, alert_id, state, status, attempts, last_error, alert FROM audit_alert_webhooks ${where} ORDER BY created_at, state`, alertId ? [alertId] : [])).rows;
}


for (const backend of STORE_BACKENDS) {
  describe(`alert webhook outbox on ${backend.name}`, function () {
    this.timeout(30_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let queuedCalls = 0;
    let alerts: AlertStore;

    before(async () => {
      ({ sql, cleanup } = await backend.open());
      await new EventStore(sql).migrate();
      alerts = new AlertStore(sql, { onWebhookQueued: () => queuedCalls++ });
    });

    after(async () => {
      await cleanup?.();
    });

    it('queues `opened` once for an alert written by many batches, with the alert as GET /v1/alerts shows it then', async () => {
      const opening = alertWrite({ subject: '198.51.100.1', ban_until: null, action: 'alert' });
      const before = queuedCalls;
      await alerts.upsert(opening);
      const [snapshot] = await alerts.query(parseAlertFilter({ subject: '198.51.100.1' }));
      await alerts.upsert({ ...opening, count: 5, sample_event_ids: [randomUUID()] });
      await alerts.upsert({ ...opening, count: 5, sample_event_ids: [randomUUID()] });
      const rows = await outboxRows(sql, opening.id);
      expect(rows.map((r) => [r.state, r.status, r.attempts])).to.deep.equal([['opened', 'pending', 0]]);
      expect(rows[0]!.alert).to.deep.equal(snapshot);
      expect(queuedCalls - before).to.equal(1);
      expect((await alerts.query(parseAlertFilter({ subject: '198.51.100.1' })))[0]!.count).to.equal(40);
    });

    it('queues `banned` for the first further ban of an open alert only, and nothing for a ban of an acked one', async () => {
      const opening = alertWrite({ subject: '198.51.100.2' });
      await alerts.upsert(opening);
      await alerts.upsert({ ...opening, ban_until: null }); // the incident continues, no crossing
      expect((await outboxRows(sql, opening.id)).map((r) => r.state)).to.deep.equal(['opened']);
      await alerts.upsert({ ...opening, ban_until: '2026-01-02T03:54:30.000Z' });
      await alerts.upsert({ ...opening, ban_until: '2026-01-02T05:54:30.000Z' });
      const rows = await outboxRows(sql, opening.id);
      expect(rows.map((r) => r.state)).to.have.members(['opened', 'banned']);
      expect(rows.find((r) => r.state === 'banned')!.alert).to.include({ ban_until: '2026-01-02T03:54:30.000Z', status: 'open' });

      const acked = alertWrite({ subject: '198.51.100.3' });
      await alerts.upsert(acked);
      await alerts.ack(acked.id);
      await alerts.upsert({ ...acked, ban_until: '2026-01-02T03:54:30.000Z' });
      expect((await outboxRows(sql, acked.id)).map((r) => r.state)).to.have.members(['opened', 'acked']);
    });

    it('queues `acked` on the first ack only; a second ack answers the alert unchanged', async () => {
      const alert = alertWrite({ subject: '198.51.100.4' });
      await alerts.upsert(alert);
      const first = await alerts.ack(alert.id);
      const again = await alerts.ack(alert.id);
      expect(first).to.include({ id: alert.id, status: 'acked' });
      expect(first).to.not.have.property('queued');
      expect(again).to.deep.equal(first);
      const rows = await outboxRows(sql, alert.id);
      expect(rows.map((r) => r.state)).to.have.members(['opened', 'acked']);
      expect(rows.find((r) => r.state === 'acked')!.alert).to.deep.equal(first);
      expect(await alerts.ack(randomUUID())).to.equal(undefined);
    });

    it('a delivery loop on this store sends each queued change once, signed, and marks it delivered', async () => {
      const receiver = await WebhookReceiver.start();
      const { logger } = captureLogger();
      const loop = new WebhookDelivery(new WebhookOutbox(sql), { url: receiver.url, secret: SECRET, timeoutMs: 1000, maxAttempts: 3, backoffBaseMs: 20, backoffCapMs: 100 }, logger);
      try {
        loop.start();
        const alert = alertWrite({ subject: '198.51.100.9' });
        await new AlertStore(sql, { onWebhookQueued: () => loop.wake() }).upsert(alert);
        const [row] = await eventually(async () => {
          const rows = await outboxRows(sql, alert.id);
          return rows[0]?.status === 'delivered' ? rows : undefined;
        }, 10_000, 'the delivery');
        expect(row).to.include({ state: 'opened', attempts: 1 });
        // The earlier tests' changes are sent too: every row of the table, each once.
        const [sent, ...again] = receiver.received.filter((r) => r.body.delivery_id === row!.id);
        expect(again).to.have.length(0);
        expect(verifyWebhookSignature(SECRET, sent!.headers['x-gateway-signature'] as string, sent!.rawBody, 300)).to.equal(true);
        const ids = receiver.received.map((r) => r.body.delivery_id);
        expect(new Set(ids).size).to.equal(ids.length);
      } finally {
        await loop.stop();
        await receiver.close();
      }
    });

    it('queues nothing while the webhook is off', async () => {
      const off = new AlertStore(sql);
      const alert = alertWrite({ subject: '198.51.100.5' });
      await off.upsert(alert);
      await off.upsert({ ...alert, ban_until: '2026-01-02T03:54:30.000Z' });
      expect(await off.ack(alert.id)).to.include({ status: 'acked' });
      expect(await outboxRows(sql, alert.id)).to.have.length(0);
    });
  });
}

describe('alert webhook outbox, writers racing on PostgreSQL', function () {
  this.timeout(30_000);
  const schema = uniqueSchema('webhook_race');
  const pools: SqlClient[] = [];

  before(async () => {
    for (let i = 0; i < 4; i++) pools.push(await openPostgres(PG_URL, schema));
    await new EventStore(pools[0]!).migrate();
  });

  after(async () => {
    for (const pool of pools) await pool.close();
    await dropSchema(schema);
  });

  it('queues one `opened`, one `banned` and one `acked` when four connections write, escalate and ack one alert at once', async () => {
    const stores = pools.map((sql) => new AlertStore(sql, { onWebhookQueued: () => undefined }));
    for (let round = 0; round < 5; round++) {
      const alert = alertWrite({ subject: `192.0.2.${round}`, ban_until: null });
      await Promise.all(stores.map((store) => store.upsert(alert)));
      expect((await outboxRows(pools[0]!, alert.id)).map((r) => r.state)).to.deep.equal(['opened']);
      await Promise.all(stores.map((store, i) => store.upsert({ ...alert, ban_until: `2026-01-02T04:0${i}:00.000Z` })));
      const acks = await Promise.all(stores.map((store) => store.ack(alert.id)));
      expect(new Set(acks.map((a) => a?.acked_at)).size).to.equal(1);
      const rows = await outboxRows(pools[0]!, alert.id);
      expect(rows.map((r) => r.state).sort()).to.deep.equal(['acked', 'banned', 'opened']);
      expect(rows.find((r) => r.state === 'opened')!.alert).to.include({ count: 30, ban_until: null });
      expect((await stores[0]!.query(parseAlertFilter({ subject: `192.0.2.${round}` })))[0]).to.include({ count: 240, ban_until: '2026-01-02T04:03:00.000Z' });
    }
  });
});

describe('alert webhook delivery (PostgreSQL, a real HTTP receiver)', function () {
  this.timeout(30_000);
  let schema: string;
  let sql: SqlClient;
  let receiver: WebhookReceiver | undefined;
  const loops: WebhookDelivery[] = [];
  const extraPools: SqlClient[] = [];

  beforeEach(async () => {
    schema = uniqueSchema('webhook_delivery');
    sql = await openPostgres(PG_URL, schema);
    await new EventStore(sql).migrate();
  });

  afterEach(async () => {
    for (const loop of loops.splice(0)) await loop.stop();
    await receiver?.close();
    receiver = undefined;
    for (const pool of extraPools.splice(0)) await pool.close();
    await sql.close();
    await dropSchema(schema);
  });

  function startLoop(store: SqlClient, options: Partial<WebhookDeliveryOptions> & { url: string }) {
    const { logger, lines } = captureLogger();
    const loop = new WebhookDelivery(new WebhookOutbox(store), { secret: SECRET, timeoutMs: 1000, maxAttempts: 5, backoffBaseMs: 50, backoffCapMs: 400, ...options }, logger);
    loops.push(loop);
    loop.start();
    return { loop, lines };
  }

  it('retries a 500 and a hang past the timeout, then delivers once: 3 attempts, each signed with the secret, one delivery id', async () => {
    receiver = await WebhookReceiver.start([500, 'hang'], 200);
    const { loop, lines } = startLoop(sql, { url: receiver.url, timeoutMs: 500 });
    const alerts = new AlertStore(sql, { onWebhookQueued: () => loop.wake() });
    const alert = alertWrite();
    await alerts.upsert(alert);
    const [row] = await eventually(async () => {
      const rows = await outboxRows(sql, alert.id);
      return rows[0]?.status === 'delivered' ? rows : undefined;
    }, 10_000, 'the delivery');
    expect(row).to.include({ state: 'opened', status: 'delivered', attempts: 3, last_error: null });
    expect(receiver.received.map((r) => r.answered)).to.deep.equal([500, 'hang', 200]);
    expect(receiver.succeeded).to.have.length(1);
    for (const request of receiver.received) {
      expect(request.headers['x-gateway-delivery']).to.equal(row!.id);
      expect(request.headers['content-type']).to.equal('application/json');
      expect(verifyWebhookSignature(SECRET, request.headers['x-gateway-signature'] as string, request.rawBody, 300)).to.equal(true);
      expect(verifyWebhookSignature(`${SECRET}-wrong`, request.headers['x-gateway-signature'] as string, request.rawBody, 300)).to.equal(false);
      expect(request.body).to.deep.equal({ delivery_id: row!.id, state: 'opened', alert: row!.alert });
    }
    const failures = lines.filter((l) => l.code === 'alert_webhook_attempt_failed');
    expect(failures.map((l) => [l.level, l.attempt, l.status ?? null, l.error])).to.deep.equal([
      ['warn', 1, 500, 'HTTP 500'],
      ['warn', 2, null, 'timed out after 500 ms'],
    ]);
    expect(lines.filter((l) => l.code === 'alert_webhook_delivered')).to.have.length(1);
    const logged = JSON.stringify(lines);
    expect(logged).to.not.include(SECRET);
    expect(logged).to.not.include('v1=');
  });

  it('marks a delivery failed after max_attempts to a receiver that is down for good, logging each attempt and the failure', async () => {
    const { lines } = startLoop(sql, { url: `http://127.0.0.1:${await freePort()}/down`, maxAttempts: 3 });
    const alert = alertWrite();
    await new AlertStore(sql, { onWebhookQueued: () => undefined }).upsert(alert);
    const [row] = await eventually(async () => {
      const rows = await outboxRows(sql, alert.id);
      return rows[0]?.status === 'failed' ? rows : undefined;
    }, 10_000, 'the failure');
    expect(row).to.include({ attempts: 3, last_error: 'ECONNREFUSED' });
    expect(lines.filter((l) => l.code === 'alert_webhook_attempt_failed').map((l) => [l.level, l.attempt, l.error])).to.deep.equal([
      ['warn', 1, 'ECONNREFUSED'],
      ['warn', 2, 'ECONNREFUSED'],
      ['warn', 3, 'ECONNREFUSED'],
    ]);
    const failed = lines.filter((l) => l.code === 'alert_webhook_failed');
    expect(failed).to.have.length(1);
    expect(failed[0]).to.include({ level: 'error', delivery_id: row!.id, alert_id: alert.id, state: 'opened', attempt: 3, max_attempts: 3 });
  });

  it('two delivery loops on one store, each on its own connections, send each queued change exactly once', async () => {
    receiver = await WebhookReceiver.start();
    const alerts = new AlertStore(sql, { onWebhookQueued: () => undefined });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const alert = alertWrite({ subject: `192.0.2.${i}` });
      ids.push(alert.id);
      await alerts.upsert(alert);
      await alerts.ack(alert.id);
    }
    const other = await openPostgres(PG_URL, schema);
    extraPools.push(other);
    const first = startLoop(sql, { url: receiver.url, batch: 2 });
    const second = startLoop(other, { url: receiver.url, batch: 2 });
    await eventually(async () => ((await outboxRows(sql)).every((r) => r.status === 'delivered') ? true : undefined), 15_000, 'every delivery');
    const deliveryIds = receiver.received.map((r) => r.headers['x-gateway-delivery']);
    expect(deliveryIds).to.have.length(40);
    expect(new Set(deliveryIds).size).to.equal(40);
    expect(new Set(receiver.received.map((r) => `${r.body.alert.id}/${r.body.state}`)).size).to.equal(40);
    const sent = [first, second].map(({ lines }) => lines.filter((l) => l.code === 'alert_webhook_delivered').length);
    expect(sent[0]! + sent[1]!).to.equal(40);
    expect(Math.min(...sent), `deliveries per loop: ${sent.join(', ')}`).to.be.above(0);
    expect((await outboxRows(sql)).every((r) => r.attempts === 1)).to.equal(true);
  });

  it('stops at once while an attempt hangs, giving the delivery back due and uncounted', async () => {
    receiver = await WebhookReceiver.start([], 'hang');
    const { loop } = startLoop(sql, { url: receiver.url, timeoutMs: 20_000 });
    const alert = alertWrite();
    await new AlertStore(sql, { onWebhookQueued: () => loop.wake() }).upsert(alert);
    await eventually(() => (receiver!.received.length === 1 ? true : undefined), 5_000, 'the attempt');
    const started = performance.now();
    await loop.stop();
    expect(performance.now() - started).to.be.below(1_000);
    const [row] = await outboxRows(sql, alert.id);
    expect(row).to.include({ status: 'pending', attempts: 0 });
  });
});

