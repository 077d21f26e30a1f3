/**
 * The investigation API (events of kind security|all, trace, timeline, top, after-revocation,
 * export, and the audit of each admin query) over real HTTP, on PostgreSQL and on PGlite, with
 * fixtures that hold the answers: two incidents of a revoked token, one refused every time, one
 * let through by fail_open while Redis was down.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { AlertStore } from '../../audit-worker/anomaly/alert-store.js';
import { apiTokenActor } from '../../audit-worker/investigation/admin-query-audit.js';
import { EXPORT_PAGE } from '../../audit-worker/investigation/export.js';
import { buildQueryApi } from '../../audit-worker/query-api.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { SecurityEventStore } from '../../audit-worker/store/security-event-store.js';
import type { SqlClient } from '../../audit-worker/store/sql-client.js';
import type { AuditEvent } from '../../common/audit-event.js';
import { silentLogger } from '../../common/logger.js';
import { securityEvent, type SecurityEvent, type SecurityEventInput } from '../../common/security-event.js';
import { auditEvent } from '../helpers/audit-events.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';

const TOKEN = 'investigation-admin-token-0123456789';
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const NOW = T0 + 3600_000;
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();


const security = (input: Omit<SecurityEventInput, 'now'>, seconds: number): SecurityEvent => securityEvent({ ...input, now: () => T0 + seconds * 1000 });

for (const backend of STORE_BACKENDS) {
  describe(`investigation API on ${backend.name}`, function () {
    this.timeout(60_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let server: Server;
    let base: string;
    let securityStore: SecurityEventStore;

    // Incident A: jti A revoked at +30s and refused every time after.
    const run = randomBytes(4).toString('hex');
    const subA = `alice-${run}`;
    const jtiA = `jti-a-${run}`;
    const ipA = `198.51.100.${1 + (randomBytes(1)[0]! % 200)}`;
    const userA = { sub: subA, consumer: `e2e:${subA}`, jti: jtiA, client_ip: ipA };
    const beforeA = [0, 10, 20].map((s) => auditEvent({ ...userA, ts: at(s), decision: 'allow', status: 200, reason: null, route: 'users', path: '/users/1' }));
    const afterA = [40, 50, 60, 70].map((s) => auditEvent({ ...userA, ts: at(s), reason: 'token_revoked', status: 401, route: 'users', path: '/users/2' }));
    const lateA = auditEvent({ ...userA, ts: at(30 * 60), reason: 'token_revoked', status: 401, route: 'orders', path: '/orders/9' });
    const revokeA = security({ kind: 'revoke', actor: 'admin-cli:ops', target: { jti: jtiA }, reason: 'leaked in a paste', ttlSeconds: 86_400 }, 30);
    const alertId = randomUUID();
    const banIpA = security({ kind: 'ban', actor: 'rule:revoked_token_use', target: { ip: ipA }, reason: 'anomaly revoked_token_use', ttlSeconds: 600, alertId }, 75);

    // Incident B: jti B revoked at +100s; with Redis down a fail_open route let one request through.
    const subB = `bob-${run}`;
    const jtiB = `jti-b-${run}`;
    const userB = { sub: subB, consumer: `e2e:${subB}`, jti: jtiB, client_ip: '203.0.113.50' };
    const revokeB = security({ kind: 'revoke', actor: 'admin-cli:ops', target: { jti: jtiB }, reason: 'stolen laptop', ttlSeconds: 86_400 }, 100);
    const eventsB = [
      auditEvent({ ...userB, ts: at(90), decision: 'allow', status: 200, reason: null, route: 'payments', path: '/payments/1' }),
      auditEvent({ ...userB, ts: at(110), reason: 'token_revoked', status: 401, route: 'payments', path: '/payments/2' }),
      auditEvent({ ...userB, ts: at(120), decision: 'allow', status: 200, reason: null, detail: 'redis_unavailable', fail_open: true, route: 'payments', path: '/payments/3' }),
      auditEvent({ ...userB, ts: at(130), reason: 'token_revoked', status: 401, route: 'payments', path: '/payments/4' }),
    ];

    // Incident C: jti C banned by a rule for 10 minutes at +200s: a request after the ban ended is not "after revocation".
    const jtiC = `jti-c-${run}`;
    const banC = security({ kind: 'ban', actor: 'rule:auth_failure_burst', target: { jti: jtiC }, reason: 'anomaly', ttlSeconds: 600 }, 200);
    const inBanC = auditEvent({ sub: `carol-${run}`, consumer: `e2e:carol-${run}`, jti: jtiC, ts: at(300), reason: 'token_revoked', status: 401 });
    const afterBanC = auditEvent({ sub: `carol-${run}`, consumer: `e2e:carol-${run}`, jti: jtiC, ts: at(900), decision: 'allow', status: 200, reason: null });

    // Consumer revocation of dave (issuer e2e) at +400s; the same sub at another issuer is someone else.
    const subD = `dave-${run}`;
    const revokeD = security({ kind: 'revoke', actor: 'admin-cli:ops', target: { consumer: `e2e:${subD}` }, reason: 'account closed' }, 400);
    const deniedD = auditEvent({ sub: subD, consumer: `e2e:${subD}`, ts: at(410), reason: 'token_revoked', status: 401 });
    const otherIssuerD = auditEvent({ sub: subD, consumer: `partner:${subD}`, ts: at(420), decision: 'allow', status: 200, reason: null });
    // After the revocation: a token issued in its second (revoked) let through by fail_open, and one issued the second after (not revoked).
    const oldTokenD = auditEvent({ sub: subD, consumer: `e2e:${subD}`, ts: at(430), token_iat: at(400.9).replace(/\.\d+Z$/, '.000Z'), decision: 'allow', status: 200, reason: null, fail_open: true });
    const newTokenD = auditEvent({ sub: subD, consumer: `e2e:${subD}`, ts: at(440), token_iat: at(401), decision: 'allow', status: 200, reason: null });

    const all: AuditEvent[] = [...beforeA, ...afterA, lateA, ...eventsB, inBanC, afterBanC, deniedD, otherIssuerD, oldTokenD, newTokenD];
    const securityEvents = [revokeA, banIpA, revokeB, banC, revokeD];

    const get = async (path: string): Promise<{ status: number; body: any }> => {
      const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: res.status, body: await res.json() };
    };

    before(async () => {
      ({ sql, cleanup } = await backend.open());
      const store = new EventStore(sql);
      await store.migrate();
      securityStore = new SecurityEventStore(sql);
      const alerts = new AlertStore(sql);
      await store.insert(all);
      await securityStore.insert(securityEvents);
      await alerts.upsert({
        id: alertId, rule: 'revoked_token_use', severity: 'high', subject_kind: 'ip', subject: ipA, count: 4, window_s: 60,
        first_ts: afterA[0]!.ts, last_ts: afterA[3]!.ts, sample_event_ids: afterA.map((e) => e.event_id),
        sample_request_ids: afterA.map((e) => e.request_id), action: 'ban', shadow: false, allow_listed: false, ban_until: at(675),
      });
      server = buildQueryApi({ store, alerts, security: securityStore, investigation: sql, auditQueries: securityStore, adminToken: TOKEN, logger: silentLogger(), now: () => NOW }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server?.close();
      await cleanup?.();
    });

    describe('after-revocation', () => {
      it('says none of the requests after the revocation got through when the token was refused every time', async () => {
        const { status, body } = await get(`/v1/after-revocation?jti=${jtiA}`);
        expect(status).to.equal(200);
        expect(body.summary).to.equal(`0 of 5 requests after the revocation at ${at(30)} were allowed`);
        expect(body).to.include({ requests: 5, allowed: 0, allowed_fail_open: 0 });
        expect(body.revocations.map((e: SecurityEvent) => e.event_id)).to.deep.equal([revokeA.event_id]);
        expect(body.events.map((e: AuditEvent) => e.event_id)).to.deep.equal([...afterA, lateA].map((e) => e.event_id));
      });

      it('says so when a revoked token got through on a fail_open route with Redis down', async () => {
        const { body } = await get(`/v1/after-revocation?jti=${jtiB}`);
        expect(body.summary).to.equal(`1 of 3 requests after the revocation at ${at(100)} was allowed (1 by fail_open while Redis was unreachable)`);
        expect(body).to.include({ requests: 3, allowed: 1, allowed_fail_open: 1 });
        const allowed = body.events.filter((e: AuditEvent) => e.decision === 'allow');
        expect(allowed.map((e: AuditEvent) => e.event_id)).to.deep.equal([eventsB[2]!.event_id]);
        expect(allowed[0]).to.include({ fail_open: true, detail: 'redis_unavailable' });
      });

      it("counts a jti ban as a revocation only until it ends", async () => {
        const { body } = await get(`/v1/after-revocation?jti=${jtiC}`);
        expect(body).to.include({ requests: 1, allowed: 0 });
        expect(body.events.map((e: AuditEvent) => e.event_id)).to.deep.equal([inBanC.event_id]);
      });

      it("takes a sub's consumer revocations, that consumer's requests, and only tokens issued up to the revocation's second", async () => {
        const { body } = await get(`/v1/after-revocation?sub=${subD}`);
        expect(body.summary).to.equal(`1 of 2 requests after the revocation at ${at(400)} was allowed (1 by fail_open while Redis was unreachable)`);
        expect(body.events.map((e: AuditEvent) => e.event_id)).to.deep.equal([deniedD.event_id, oldTokenD.event_id]);
        expect(body.events[1].token_iat).to.equal(oldTokenD.token_iat);
        expect((await get(`/v1/after-revocation?consumer=partner:${subD}`)).body.summary).to.equal(`no revocation of consumer partner:${subD} is recorded`);
      });

      it('refuses a query without exactly one of jti, sub, consumer, naming the parameter', async () => {
        for (const query of ['', `jti=${jtiA}&sub=${subA}`]) {
          const { status, body } = await get(`/v1/after-revocation?${query}`);
          expect(status).to.equal(400);
          expect(body).to.deep.equal({ error: 'jti: give exactly one of jti, sub, consumer', reason: 'bad_request' });
        }
        expect((await get('/v1/after-revocation?jti=')).body.error).to.equal('jti: must not be empty');
        expect((await get('/v1/after-revocation?token=x&jti=a')).body.error).to.equal('unknown parameter: token');
      });
    });

    describe('trace', () => {
      it('lists the event, the alert citing it, the security events of its alert and subjects, and the same token within ±10 minutes', async () => {
        const target = afterA[1]!;
        const { status, body } = await get(`/v1/trace/${target.request_id}`);
        expect(status).to.equal(200);
        expect(body.event).to.deep.equal(target);
        expect(body.alerts.map((a: { id: string }) => a.id)).to.deep.equal([alertId]);
        expect(body.security_events.map((e: SecurityEvent) => e.event_id)).to.deep.equal([banIpA.event_id, revokeA.event_id]);
        expect(body.same_token.map((e: AuditEvent) => e.event_id)).to.deep.equal([...beforeA, afterA[0]!, afterA[2]!, afterA[3]!].map((e) => e.event_id));
        expect(body.same_token_truncated).to.equal(false);
      });

      it('answers 404 for an unknown request id and 400 for a parameter it does not take', async () => {
        expect(await get(`/v1/trace/nope-${run}`)).to.deep.equal({ status: 404, body: { error: 'no event with this request id', reason: 'not_found' } });
        expect(await get(`/v1/trace/${afterA[0]!.request_id}?since=1h`)).to.deep.equal({ status: 400, body: { error: 'unknown parameter: since', reason: 'bad_request' } });
      });
    });

    describe('timeline', () => {
      it('counts per bucket by decision and reason, empty buckets included', async () => {
        const { body } = await get(`/v1/timeline?jti=${jtiA}&since=${at(0)}&until=${at(120)}&bucket=30s`);
        expect(body).to.deep.equal({
          since: at(0),
          until: at(120),
          bucket_s: 30,
          buckets: [
            { start: at(0), allow: 3, deny: 0, counts: [{ decision: 'allow', reason: null, count: 3 }] },
            { start: at(30), allow: 0, deny: 2, counts: [{ decision: 'deny', reason: 'token_revoked', count: 2 }] },
            { start: at(60), allow: 0, deny: 2, counts: [{ decision: 'deny', reason: 'token_revoked', count: 2 }] },
            { start: at(90), allow: 0, deny: 0, counts: [] },
          ],
        });
      });

      it('refuses a bucket too small for the range and a missing since, naming them', async () => {
        expect((await get('/v1/timeline?since=7d&bucket=1s')).body.error).to.equal('bucket: too small for the range: 604800 buckets (at most 10000)');
        expect((await get('/v1/timeline?bucket=1m')).body.error).to.match(/^since: /);
        expect((await get('/v1/timeline?since=1h&bucket=5w')).body.error).to.match(/^bucket: must be a duration/);
      });
    });

    describe('top', () => {
      it('ranks subjects by denied requests', async () => {
        const { body } = await get(`/v1/top?by=sub&decision=deny&since=${at(0)}&until=${at(3600)}&limit=3`);
        expect(body.rows.filter((r: { value: string }) => r.value.endsWith(run))).to.deep.equal([
          { value: subA, count: 5, allow: 0, deny: 5 },
          { value: subB, count: 2, allow: 0, deny: 2 },
          { value: `carol-${run}`, count: 1, allow: 0, deny: 1 },
        ]);
      });

      it('ranks reasons within one consumer, and refuses an unknown --by', async () => {
        const { body } = await get(`/v1/top?by=route&consumer=e2e:${subA}&since=${at(0)}&until=${at(3600)}`);
        expect(body.rows).to.deep.equal([
          { value: 'users', count: 7, allow: 3, deny: 4 },
          { value: 'orders', count: 1, allow: 0, deny: 1 },
        ]);
        expect((await get('/v1/top?by=planet&since=1h')).body.error).to.match(/^by: /);
      });
    });

    describe('events', () => {
      it('filters by jti, status and path prefix (wildcards taken literally)', async () => {
        const ids = async (query: string) => (await get(`/v1/events?${query}`)).body.events.map((e: AuditEvent) => e.event_id);
        expect(await ids(`jti=${jtiB}&status=200`)).to.deep.equal([eventsB[2]!.event_id, eventsB[0]!.event_id]);
        expect(await ids(`sub=${subA}&path_prefix=/orders`)).to.deep.equal([lateA.event_id]);
        expect(await ids(`sub=${subA}&path_prefix=/users/_`)).to.deep.equal([]);
        expect((await get('/v1/events?status=abc')).body.error).to.match(/^status: /);
        expect((await get('/v1/events?kind=audit')).body.error).to.match(/^kind: /);
      });

      it('merges security events with kind=all, newest first, each tagged with its source, page by page', async () => {
        const seen: { source: string; event_id: string }[] = [];
        let cursor: string | null = null;
        do {
          const page: { body: { events: { source: string; event_id: string }[]; next_cursor: string | null } } = await get(`/v1/events?kind=all&jti=${jtiA}&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
          seen.push(...page.body.events);
          cursor = page.body.next_cursor;
        } while (cursor);
        const expected = [
          { source: 'request', event_id: lateA.event_id },
          ...[...afterA].reverse().map((e) => ({ source: 'request', event_id: e.event_id })),
          { source: 'security', event_id: revokeA.event_id },
          ...[...beforeA].reverse().map((e) => ({ source: 'request', event_id: e.event_id })),
        ];
        expect(seen.map((e) => ({ source: e.source, event_id: e.event_id }))).to.deep.equal(expected);
      });

      it('lists security events alone with kind=security, by subject', async () => {
        const { body } = await get(`/v1/events?kind=security&client_ip=${ipA}`);
        expect(body.events).to.deep.equal([{ source: 'security', ...banIpA }]);
        expect((await get(`/v1/events?kind=security&sub=${subD}`)).body.events.map((e: SecurityEvent) => e.event_id)).to.deep.equal([revokeD.event_id]);
        expect((await get(`/v1/events?kind=security&jti=${jtiA}&decision=deny`)).body.events).to.deep.equal([]);
      });
    });

    describe('export', () => {
      it('streams every event of the range as JSON lines, oldest first, request and security merged', async () => {
        const res = await fetch(`${base}/v1/export?since=${at(0)}&until=${at(3600)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/^application\/x-ndjson/);
        expect(res.headers.get('transfer-encoding')).to.equal('chunked');
        const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as { source: string; event_id: string; ts: string });
        const ours = new Set([...all, ...securityEvents].map((e) => e.event_id));
        const mine = lines.filter((l) => ours.has(l.event_id));
        expect(mine).to.have.length(ours.size);
        const times = mine.map((l) => Date.parse(l.ts));
        expect(times).to.deep.equal([...times].sort((a, b) => a - b));
        expect(mine.find((l) => l.event_id === revokeB.event_id)).to.deep.equal({ source: 'security', ...revokeB });
        expect(mine.find((l) => l.event_id === eventsB[2]!.event_id)).to.deep.equal({ source: 'request', ...eventsB[2]! });
      });

      it('pages through more events than one page holds, each once', async () => {
        const sub = `bulk-${run}`;
        const start = T0 + 2 * 86_400_000;
        const bulk = Array.from({ length: EXPORT_PAGE * 2 + 7 }, (_, i) => auditEvent({ sub, ts: new Date(start + Math.floor(i / 3)).toISOString() }));
        await new EventStore(sql).insert(bulk);
        const res = await fetch(`${base}/v1/export?kind=request&since=${new Date(start).toISOString()}&until=${new Date(start + 86_400_000).toISOString()}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const ids = (await res.text()).trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditEvent).event_id);
        expect(ids).to.have.length(bulk.length);
        expect(new Set(ids)).to.deep.equal(new Set(bulk.map((e) => e.event_id)));
      });

      it('refuses a since after until, naming since', async () => {
        expect(await get(`/v1/export?since=${at(10)}&until=${at(0)}`)).to.deep.equal({ status: 400, body: { error: 'since: must not be after until', reason: 'bad_request' } });
      });
    });

    describe('admin queries', () => {
      it('records each admin query as one admin_query security event naming a hash of the token, never the token', async () => {
        const marker = `marker-${randomUUID()}`;
        await get(`/v1/events?sub=${marker}&limit=5`);
        const recorded = (await securityStore.query({ kind: 'admin_query', limit: 1000 })).filter((e) => e.reason.includes(marker));
        expect(recorded).to.have.length(1);
        expect(recorded[0]).to.include({ actor: apiTokenActor(TOKEN), subject_kind: 'route', subject: 'GET /v1/events', reason: `sub=${marker}&limit=5` });
        expect(JSON.stringify(recorded)).not.to.include(TOKEN);
        const sneaky = await get(`/v1/events?sub=${TOKEN}`);
        expect(sneaky.status).to.equal(200);
        const all = await securityStore.query({ kind: 'admin_query', limit: 1000 });
        expect(JSON.stringify(all)).not.to.include(TOKEN);
        expect(all.some((e) => e.reason === 'sub=[admin-token]')).to.equal(true);
      });

      it('widens the kind checks of a table made before admin_query existed, once', async () => {
        // NOT VALID: this store already holds admin_query rows; an old store would not.
        await sql.exec(`ALTER TABLE audit_security_events DROP CONSTRAINT audit_security_events_kind;
          ALTER TABLE audit_security_events ADD CONSTRAINT audit_security_events_kind CHECK (kind IN ('ban', 'unban', 'revoke')) NOT VALID;
          ALTER TABLE audit_security_events DROP CONSTRAINT audit_security_events_subject_kind;
          ALTER TABLE audit_security_events ADD CONSTRAINT audit_security_events_subject_kind CHECK (subject_kind IN ('ip', 'consumer', 'jti')) NOT VALID;`);
        expect((await get('/v1/events?limit=1')).status).to.equal(500);
        // A store at the schema version before admin_query.
        await sql.query(`DELETE FROM audit_schema_migrations WHERE version >= 7`);
        await new EventStore(sql).migrate();
        await new EventStore(sql).migrate();
        expect((await get('/v1/events?limit=1')).status).to.equal(200);
      });

      it('records nothing for a call without the token', async () => {
        const before = (await securityStore.query({ kind: 'admin_query', limit: 1000 })).length;
        const res = await fetch(`${base}/v1/events?sub=x`);
        expect(res.status).to.equal(401);
        expect((await securityStore.query({ kind: 'admin_query', limit: 1000 })).length).to.equal(before);
      });
    });
  });
}
