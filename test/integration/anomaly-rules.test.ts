/**
 * The counting rules against a real Redis, each worker an AnomalyRules of its own (as two
 * worker processes are): token_many_ips (distinct ips per token), rate_limit_storm and
 * volume_spike, with their bans. Event times are chosen, so windows are exact.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { AlertWrite } from '../../audit-worker/anomaly/alert-store.js';
import { AnomalyRules } from '../../audit-worker/anomaly/anomaly-rules.js';
import type { AuditEvent } from '../../common/audit-event.js';
import { parseConfig } from '../../common/config/load.js';
import { RedisKeys } from '../../common/redis-keys.js';
import type { SecurityEvent } from '../../common/security-event.js';
import { auditEvent } from '../helpers/audit-events.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { TestRedis } from '../helpers/redis-server.js';

const MINUTE = 60_000;
/** The start of a minute window, far enough back that events of `minute(n)` are all in the past. */
const BASE = (Math.floor(Date.now() / MINUTE) - 20) * MINUTE;
const at = (minute: number, ms = 0) => new Date(BASE + minute * MINUTE + ms).toISOString();

function rulesConfig(rules: string, allowList = '{}') {
  return parseConfig(`routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\nanomaly:\n  rules:\n${rules}\n  allow_list: ${allowList}\n`, 'gw.yml', {}).anomaly;
}

describe('anomaly counting rules (real Redis)', function () {
  this.timeout(30_000);
  let server: TestRedis;
  let redis: Redis;
  let keys: RedisKeys;
  let alerts: AlertWrite[];
  let securityEvents: SecurityEvent[];
  /** The rules' own connections, closed with the server (else they retry it for the rest of the run). */
  const clients: Redis[] = [];
  const client = (): Redis => {
    const c = new Redis(server.url);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await TestRedis.start();
    redis = new Redis(server.url);
  });

  after(async () => {
    redis?.disconnect();
    for (const c of clients.splice(0)) c.disconnect();
    await server?.stop();
  });

  beforeEach(async () => {
    await redis.flushall();
    keys = new RedisKeys('gw');
    alerts = [];
    securityEvents = [];
  });

  /** A worker: its own connection and rules, writing alerts into `alerts`. */
  function worker(config: ReturnType<typeof rulesConfig>): AnomalyRules {
    const stores = { alerts: { upsert: async (alert: AlertWrite) => void alerts.push(alert) }, securityEvents: { insert: async (events: readonly SecurityEvent[]) => void securityEvents.push(...events) } };
    return new AnomalyRules(client(), keys, config, stores, captureLogger().logger);
  }

  const allowed = (overrides: Partial<AuditEvent>) => auditEvent({ status: 200, decision: 'allow', reason: null, ...overrides });

  describe('token_many_ips', () => {
    const config = () => rulesConfig('    token_many_ips: { threshold: 10, window: 10m, ban_ttl: 1h }\n    volume_spike: { enabled: false }', '{ consumers: ["local:svc"] }');

    it('one token from 9 ips, however often, raises nothing; the 10th ip raises one alert and revokes the token', async () => {
      const [first, second] = [worker(config()), worker(config())];
      const jti = 'stolen-1';
      const from = (ip: number, n: number) => Array.from({ length: n }, (_, i) => allowed({ jti, consumer: 'local:alice', client_ip: `198.51.100.${ip}`, ts: at(0, ip * 1000 + i) }));
      // Ips 1-9, each many times, split between the two workers and each batch delivered twice.
      for (let ip = 1; ip <= 9; ip++) {
        const batch = from(ip, 5);
        await (ip % 2 ? first : second).afterStore(batch);
        await (ip % 2 ? second : first).afterStore(batch);
      }
      expect(alerts).to.have.length(0);
      expect(await redis.exists(keys.revokedJti(jti))).to.equal(0);
      await second.afterStore(from(10, 3));
      expect(alerts).to.have.length(1);
      expect(alerts[0]).to.include({ rule: 'token_many_ips', severity: 'high', subject_kind: 'jti', subject: jti, count: 10, action: 'ban', allow_listed: false });
      expect(await redis.ttl(keys.revokedJti(jti))).to.be.within(3590, 3600);
      expect(securityEvents).to.have.length(1);
      expect(securityEvents[0]).to.include({ kind: 'ban', actor: 'rule:token_many_ips', subject_kind: 'jti', subject: jti, alert_id: alerts[0]!.id });
      expect(Date.parse(securityEvents[0]!.until!) - Date.now()).to.be.within(3_590_000, 3_600_000);
      // An ip already counted adds nothing; an 11th adds one to the open alert.
      await first.afterStore([...from(3, 2), ...from(11, 1)]);
      expect(alerts.map((alert) => alert.count)).to.deep.equal([10, 1]);
      expect(new Set(alerts.map((alert) => alert.id)).size).to.equal(1);
    });

    it("an allow-listed consumer's token: the alert, no revocation", async () => {
      const rules = worker(config());
      const events = Array.from({ length: 10 }, (_, ip) => allowed({ jti: 'svc-token', consumer: 'local:svc', client_ip: `10.0.0.${ip + 1}`, ts: at(1, ip) }));
      await rules.afterStore(events);
      expect(alerts).to.have.length(1);
      expect(alerts[0]).to.include({ subject: 'svc-token', allow_listed: true, ban_until: null });
      expect(await redis.exists(keys.revokedJti('svc-token'))).to.equal(0);
    });

    it('never shortens a longer revocation of the token', async () => {
      await redis.set(keys.revokedJti('long-revoked'), '1', 'EX', 86_400 * 7);
      const events = Array.from({ length: 10 }, (_, ip) => allowed({ jti: 'long-revoked', client_ip: `192.0.2.${ip + 1}`, ts: at(2, ip) }));
      await worker(config()).afterStore(events);
      expect(alerts).to.have.length(1);
      expect(await redis.ttl(keys.revokedJti('long-revoked'))).to.be.above(86_400 * 6);
    });
  });

  describe('an alert write that fails', () => {
    it('is written by the retried job, once, with its whole count; the ban is not lost either, nor counted or audited twice', async () => {
      let down = true;
      const written: AlertWrite[] = [];
      const stores = {
        alerts: {
          upsert: async (alert: AlertWrite) => {
            if (down) throw new Error('database down');
            written.push(alert);
          },
        },
        securityEvents: { insert: async (events: readonly SecurityEvent[]) => void securityEvents.push(...events) },
      };
      const rules = new AnomalyRules(client(), keys, rulesConfig('    auth_failure_burst: { threshold: 5, window: 1m }'), stores, captureLogger().logger);
      const batch = Array.from({ length: 6 }, (_, i) => auditEvent({ reason: 'token_invalid', consumer: null, sub: null, jti: null, client_ip: '192.0.2.77', ts: at(4, i) }));
      let failure: Error | undefined;
      await rules.afterStore(batch).catch((err: Error) => (failure = err));
      expect(failure?.message).to.equal('database down');
      expect(await redis.exists(keys.banIp('192.0.2.77'))).to.equal(1);
      down = false;
      await rules.afterStore(batch); // the job's retry
      await rules.afterStore(batch); // and a redelivery after it: nothing more
      expect(written).to.have.length(1);
      expect(written[0]).to.include({ rule: 'auth_failure_burst', subject: '192.0.2.77', count: 6, action: 'ban' });
      // The ban was applied twice (the first try and the retry): one offence, one security event id.
      expect(await redis.get(keys.banOffences('ip:192.0.2.77'))).to.equal('1');
      expect(securityEvents).to.have.length(2);
      expect(securityEvents[1]!.event_id).to.equal(securityEvents[0]!.event_id);
      expect(securityEvents[0]).to.include({ kind: 'ban', actor: 'rule:auth_failure_burst', subject: '192.0.2.77', alert_id: written[0]!.id });
    });
  });

  describe('stores that fail at random', () => {
    it('40 incidents, each batch a duplicate job on two workers at once, each retried until it succeeds, and redelivered, the alert and security stores failing a third of the time: every alert counts its events exactly, every ban is audited once and counted once', async () => {
      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const byId = new Map<string, AlertWrite[]>();
      const audited = new Map<string, SecurityEvent>();
      const flaky = <T>(write: (value: T) => void) => async (value: T) => {
        if (random() < 1 / 3) throw new Error('database unavailable');
        write(value);
      };
      const stores = {
        alerts: { upsert: flaky((alert: AlertWrite) => byId.set(alert.id, [...(byId.get(alert.id) ?? []), alert])) },
        securityEvents: { insert: flaky((events: readonly SecurityEvent[]) => events.forEach((event) => audited.set(event.event_id, event))) },
      };
      const config = rulesConfig('    auth_failure_burst: { threshold: 5, window: 1m }\n    volume_spike: { enabled: false }');
      const workers = [0, 1].map(() => new AnomalyRules(client(), keys, config, stores, captureLogger().logger));
      let failures = 0;
      for (let incident = 0; incident < 40; incident++) {
        const ip = `198.18.${incident}.1`;
        // 12 refused tokens in 3 batches: crossings at 5 and 10 (two bans), one alert counting 12.
        for (let b = 0; b < 3; b++) {
          const batch = Array.from({ length: 4 }, (_, i) => auditEvent({ reason: 'token_invalid', consumer: null, sub: null, jti: null, client_ip: ip, ts: at(5, incident * 100 + b * 4 + i) }));
          // Two jobs of the batch (a duplicate), one per worker, at once, each retried until it
          // succeeds (as BullMQ retries a failed job), then a redelivery of it.
          const job = async (rules: AnomalyRules) => {
            while (!(await rules.afterStore(batch).then(() => true, () => false))) failures += 1;
          };
          await Promise.all(workers.map(job));
          await job(workers[b % 2]!);
        }
      }
      expect(failures, 'failures injected').to.be.above(20);
      expect(byId.size).to.equal(40);
      for (const writes of byId.values()) expect(writes.reduce((sum, w) => sum + w.count, 0), `count of alert on ${writes[0]!.subject}`).to.equal(12);
      expect(audited.size, 'one security event per ban').to.equal(80);
      for (let incident = 0; incident < 40; incident++) expect(await redis.get(keys.banOffences(`ip:198.18.${incident}.1`))).to.equal('2');
    });
  });

  describe('rate_limit_storm', () => {
    it('100 refusals of one consumer raise one alert on the consumer; with action ban, the consumer is banned; an anonymous storm is the ip', async () => {
      const rules = worker(rulesConfig('    rate_limit_storm: { threshold: 100, window: 1m, action: ban, ban_ttl: 5m }\n    volume_spike: { enabled: false }'));
      const limited = (overrides: Partial<AuditEvent>, i: number) => auditEvent({ status: 429, reason: 'rate_limited', ts: at(3, i * 10), ...overrides });
      await rules.afterStore(Array.from({ length: 99 }, (_, i) => limited({ consumer: 'local:bob', client_ip: `203.0.113.${i % 50}` }, i)));
      expect(alerts).to.have.length(0);
      await rules.afterStore([limited({ consumer: 'local:bob' }, 99)]);
      expect(alerts).to.have.length(1);
      expect(alerts[0]).to.include({ rule: 'rate_limit_storm', subject_kind: 'consumer', subject: 'local:bob', count: 100, action: 'ban' });
      expect(await redis.ttl(keys.banConsumer('local:bob'))).to.be.within(290, 300);

      await rules.afterStore(Array.from({ length: 100 }, (_, i) => limited({ consumer: null, sub: null, jti: null, client_ip: '203.0.113.99' }, i)));
      expect(alerts.map((alert) => `${alert.subject_kind}:${alert.subject}`)).to.deep.equal(['consumer:local:bob', 'ip:203.0.113.99']);
      expect(await redis.exists(keys.banIp('203.0.113.99'))).to.equal(1);
    });
  });

  describe('volume_spike', () => {
    const config = () => rulesConfig('    volume_spike: { threshold: 200, window: 1m, factor: 10, baseline: 5m }\n    token_many_ips: { enabled: false }');
    const requests = (consumer: string, minute: number, n: number, offset = 0) =>
      Array.from({ length: n }, (_, i) => allowed({ consumer, jti: null, ts: at(minute, offset + Math.floor((i * 50_000) / n)) }));

    it("a consumer far above its own baseline raises one alert per spike; its usual rate, and a redelivered batch, raise nothing", async () => {
      const [first, second] = [worker(config()), worker(config())];
      // Minute 5 is partial (dropped), minutes 6-9 make a baseline of 100 a minute: limit 1,000.
      const store = async (rules: AnomalyRules, events: AuditEvent[], newToStore = true) => {
        await rules.afterStore(events, newToStore);
        await rules.flush();
      };
      await store(first, requests('local:carol', 5, 20));
      for (let minute = 6; minute <= 9; minute++) await store(minute % 2 ? first : second, requests('local:carol', minute, 100));
      expect(alerts).to.have.length(0);
      const spike = requests('local:carol', 10, 1000);
      // Batches stored by either worker, each worker's sums sent every other batch.
      for (let i = 0; i < 9; i++) await (i % 2 ? first : second).afterStore(spike.slice(i * 100, i * 100 + 100));
      await Promise.all([first.flush(), second.flush()]);
      // The 900 so far, once more from a redelivered batch (the store had its events): still under 1,000.
      await store(first, spike.slice(0, 100), false);
      expect(alerts).to.have.length(0);
      await store(second, spike.slice(900));
      expect(alerts).to.have.length(1);
      expect(alerts[0]).to.include({ rule: 'volume_spike', subject_kind: 'consumer', subject: 'local:carol', count: 1000, action: 'alert' });
      expect(alerts[0]!.sample_event_ids).to.have.length(10);
    });

    it("a new consumer (no baseline yet) raises nothing under factor x floor; a burst over it does", async () => {
      const rules = worker(config());
      await rules.afterStore(requests('local:new-busy', 12, 1999));
      await rules.flush();
      expect(alerts).to.have.length(0);
      await rules.afterStore(requests('local:new-loud', 12, 2000));
      await rules.flush();
      expect(alerts.map((alert) => alert.subject)).to.deep.equal(['local:new-loud']);
    });
  });
});
