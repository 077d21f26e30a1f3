import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { AuditEvent } from '../../common/audit-event.js';
import { parseEventFilter } from '../../audit-worker/event-filter.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { insertIsolating, type SetAside } from '../../audit-worker/store/isolating-insert.js';
import { openPGlite, openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { auditEvent, auditEvents } from '../helpers/audit-events.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Backend {
  name: string;
  /** `openEmpty`: a client on another, empty database (to close, or to build an older table in). */
  open(): Promise<{ sql: SqlClient; cleanup(): Promise<void>; openEmpty(): Promise<SqlClient> }>;
}

const backends: Backend[] = [
  {
    name: 'PostgreSQL',
    async open() {
      const schemas = [`audit_test_${randomBytes(6).toString('hex')}`];
      const sql = await openPostgres(PG_URL, schemas[0]!);
      return {
        sql,
        openEmpty: () => {
          schemas.push(`audit_test_${randomBytes(6).toString('hex')}`);
          return openPostgres(PG_URL, schemas.at(-1)!);
        },
        async cleanup() {
          for (const schema of schemas) await sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await sql.close();
        },
      };
    },
  },
  {
    name: 'PGlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'audit-store-'));
      const sql = await openPGlite(join(dir, 'db'));
      let opened = 0;
      return {
        sql,
        openEmpty: () => openPGlite(join(dir, `empty-${++opened}`)),
        async cleanup() {
          await sql.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

const NOW = Date.now();
const filter = (input: Record<string, unknown>) => parseEventFilter(input, () => NOW);
const newestFirst = (a: AuditEvent, b: AuditEvent) => Date.parse(b.ts) - Date.parse(a.ts) || (a.event_id < b.event_id ? 1 : -1);

for (const backend of backends) {
  describe(`event store on ${backend.name}`, function () {
    this.timeout(60_000);
    let store: EventStore;
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let openEmpty: () => Promise<SqlClient>;
    let sub: string;

    before(async () => {
      const opened = await backend.open();
      cleanup = opened.cleanup;
      sql = opened.sql;
      openEmpty = opened.openEmpty;
      store = new EventStore(opened.sql);
      await store.migrate();
      await store.migrate(); // idempotent
    });
    after(async () => cleanup?.());
    beforeEach(() => {
      sub = `user-${randomUUID()}`;
    });

    it('stores every event of a batch', async () => {
      const batch = auditEvents(5, { sub });
      expect(await store.insert(batch)).to.equal(5);
      const page = await store.query(filter({ sub }));
      expect(page.events.map((e) => e.event_id)).to.have.members(batch.map((e) => e.event_id));
      expect(page.next_cursor).to.equal(null);
    });

    it('stores none of a batch whose event ids it already has', async () => {
      const batch = auditEvents(4, { sub });
      expect(await store.insert(batch)).to.equal(4);
      expect(await store.insert(batch)).to.equal(0);
      expect(await store.insert([...batch.slice(0, 2), auditEvent({ sub })])).to.equal(1);
      expect((await store.query(filter({ sub }))).events).to.have.length(5);
    });

    it('filters by sub, decision, reason and since', async () => {
      const allowed = auditEvent({ sub, decision: 'allow', reason: null, status: 200, ts: new Date(NOW - 10_000).toISOString() });
      const limited = auditEvent({ sub, reason: 'rate_limited', status: 429, ts: new Date(NOW - 20_000).toISOString() });
      const revokedOld = auditEvent({ sub, reason: 'token_revoked', ts: new Date(NOW - 2 * 3600_000).toISOString() });
      const otherUser = auditEvent({ sub: `${sub}-other`, ts: new Date(NOW).toISOString() });
      await store.insert([allowed, limited, revokedOld, otherUser]);
      const ids = async (input: Record<string, unknown>) => (await store.query(filter(input))).events.map((e) => e.event_id);
      expect(await ids({ sub })).to.deep.equal([allowed.event_id, limited.event_id, revokedOld.event_id]);
      expect(await ids({ sub, decision: 'deny' })).to.deep.equal([limited.event_id, revokedOld.event_id]);
      expect(await ids({ sub, reason: 'token_revoked' })).to.deep.equal([revokedOld.event_id]);
      expect(await ids({ sub, since: '1h' })).to.deep.equal([allowed.event_id, limited.event_id]);
      expect(await ids({ sub, until: '15s' })).to.deep.equal([limited.event_id, revokedOld.event_id]);
    });

    it('pages through every event exactly once, newest first, across equal timestamps', async () => {
      const sameTs = new Date(NOW - 5000).toISOString();
      const batch = [...auditEvents(13, { sub }, NOW), ...auditEvents(7, { sub, ts: sameTs })];
      await store.insert(batch);
      const seen: AuditEvent[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await store.query(filter({ sub, limit: '4', ...(cursor ? { cursor } : {}) }));
        seen.push(...page.events);
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor);
      expect(pages).to.equal(5);
      expect(seen.map((e) => e.event_id)).to.deep.equal([...batch].sort(newestFirst).map((e) => e.event_id));
    });

    it('adds the truncated column to a table made before it, existing rows reading as cut nowhere', async () => {
      const older = await openEmpty();
      try {
        // audit_events as the first version created it, with one row.
        await older.exec(`
          CREATE TABLE audit_events (
            event_id uuid PRIMARY KEY, ts timestamptz NOT NULL, request_id text NOT NULL, gateway_id text NOT NULL,
            route text, method text NOT NULL, path text NOT NULL, status integer NOT NULL, decision text NOT NULL,
            reason text, detail text, sub text, consumer text, jti text, client_ip text NOT NULL, user_agent text,
            latency_ms double precision NOT NULL, upstream_status integer, bytes_out bigint NOT NULL, rate_limit jsonb,
            fail_open boolean NOT NULL, shadow boolean NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT audit_events_decision CHECK (decision IN ('allow', 'deny')));`);
        const old = auditEvent({ sub, trace_id: null, config_hash: null });
        await older.query(
          `INSERT INTO audit_events SELECT * FROM jsonb_populate_record(NULL::audit_events, $1::jsonb)`,
          [JSON.stringify({ ...old, truncated: undefined, stored_at: new Date().toISOString() })],
        );
        const migrated = new EventStore(older);
        await migrated.migrate();
        const cut = auditEvent({ sub, path: '/p', truncated: ['path'], ts: new Date(Date.parse(old.ts) + 1000).toISOString() });
        expect(await migrated.insert([cut])).to.equal(1);
        expect((await migrated.query(filter({ sub }))).events).to.deep.equal([cut, old]);
      } finally {
        await older.close();
      }
    });

    it('stores the rest of a batch and sets aside, alone, each event the database refuses', async () => {
      const good = auditEvents(19, { sub });
      const nulInJti = auditEvent({ sub, jti: 'x\u0000y' });
      const nulInRequestId = auditEvent({ sub, request_id: 'r\u0000q' });
      const loneSurrogate = auditEvent({ sub, user_agent: 'agent\uD800' }); // JSON.stringify writes \ud800: not JSON to jsonb
      const batch = [loneSurrogate, ...good.slice(0, 5), nulInJti, ...good.slice(5, 17), nulInRequestId, ...good.slice(17)];
      const setAside: SetAside[] = [];

      const result = await insertIsolating(store, batch, (s) => setAside.push(s));

      expect(result).to.deep.equal({ stored: 19, setAside: 3 });
      expect(setAside.map((s) => [s.event.event_id, s.sqlstate])).to.have.deep.members([
        [nulInJti.event_id, '22P05'],
        [nulInRequestId.event_id, '22P05'],
        [loneSurrogate.event_id, '22P02'],
      ]);
      const page = await store.query(filter({ sub, limit: '1000' }));
      expect(page.events.map((e) => e.event_id)).to.have.members(good.map((e) => e.event_id));
      const { rows } = await sql.query<{ event_id: string; request_id: string; error_code: string; raw: string }>(
        'SELECT event_id, request_id, error_code, raw FROM audit_events_rejected WHERE event_id = ANY($1::uuid[]) ORDER BY request_id',
        [[nulInJti.event_id, nulInRequestId.event_id, loneSurrogate.event_id]],
      );
      expect(rows.map((r) => ({ ...r, raw: JSON.parse(r.raw) as unknown }))).to.have.deep.members([
        { event_id: nulInJti.event_id, request_id: nulInJti.request_id, error_code: '22P05', raw: nulInJti },
        { event_id: nulInRequestId.event_id, request_id: 'r\\u0000q', error_code: '22P05', raw: nulInRequestId },
        { event_id: loneSurrogate.event_id, request_id: loneSurrogate.request_id, error_code: '22P02', raw: loneSurrogate },
      ]);
      // Redelivered: the good ones are already there, the bad one is set aside once.
      expect(await insertIsolating(store, batch, () => undefined)).to.deep.equal({ stored: 0, setAside: 3 });
      expect((await sql.query('SELECT 1 FROM audit_events_rejected WHERE event_id = $1', [nulInJti.event_id])).rows).to.have.length(1);
    });

    it('sets nothing aside and throws when the database cannot be reached', async () => {
      const other = await openEmpty();
      const unreachable = new EventStore(other);
      await unreachable.migrate();
      await other.close();
      const batch = [...auditEvents(3, { sub }), auditEvent({ sub, jti: 'x\u0000y' })];
      const setAside: SetAside[] = [];
      let thrown: unknown;
      try {
        await insertIsolating(unreachable, batch, (s) => setAside.push(s));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.be.instanceOf(Error);
      expect(setAside).to.deep.equal([]);
    });

    it('returns an event with exactly the field values it was given', async () => {
      const full = auditEvent({
        sub,
        decision: 'allow',
        reason: null,
        detail: 'shadow_would_deny',
        status: 200,
        upstream_status: 201,
        latency_ms: 0.1 + 0.2,
        bytes_out: Number.MAX_SAFE_INTEGER,
        fail_open: true,
        shadow: true,
        path: "/users/'; DROP TABLE audit_events; --",
        user_agent: 'Mozilla/5.0 (ünïcode ✓)',
        truncated: ['path', 'user_agent', 'rate_limit.limit'],
      });
      const sparse = auditEvent({ sub, route: null, reason: null, detail: null, consumer: null, jti: null, user_agent: null, rate_limit: null, ts: new Date(NOW - 60_000).toISOString() });
      await store.insert([full, sparse]);
      const { events } = await store.query(filter({ sub }));
      expect(events).to.deep.equal([full, sparse]);
    });
  });
}
