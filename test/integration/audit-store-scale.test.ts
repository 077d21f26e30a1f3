import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { AuditEvent } from '../../common/audit-event.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import { parseEventFilter } from '../../audit-worker/event-filter.js';
import { DAYS_AHEAD, EventStore } from '../../audit-worker/store/event-store.js';
import { insertIsolating, type SetAside } from '../../audit-worker/store/isolating-insert.js';
import { TS_IN_FUTURE, TS_PAST_RETENTION } from '../../audit-worker/store/kept-window.js';
import { MIGRATIONS } from '../../audit-worker/store/migrations.js';
import { DAY_MS, partitionDays, partitionName, utcDay } from '../../audit-worker/store/partitions.js';
import { Retention } from '../../audit-worker/store/retention.js';
import { runMigrations } from '../../audit-worker/store/run-migrations.js';
import { openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { auditEvent, auditEvents } from '../helpers/audit-events.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/net.js';
import { dropSchema, PG_URL } from '../helpers/postgres.js';

const UNVERSIONED_SCHEMA = readFileSync(join(PROJECT_ROOT, 'test/fixtures/audit-store/unversioned-schema.sql'), 'utf8');
const NOW = Date.now();
const HOUR_MS = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const daysAgo = (days: number) => NOW - days * DAY_MS;
const filter = (input: Record<string, unknown>) => parseEventFilter(input, () => NOW);
const newestFirst = (a: AuditEvent, b: AuditEvent) => Date.parse(b.ts) - Date.parse(a.ts) || (a.event_id < b.event_id ? 1 : -1);
/** Today and the DAYS_AHEAD days after it, as migrate() makes them. */
const daysAhead = () => Array.from({ length: DAYS_AHEAD + 1 }, (_, i) => utcDay(NOW + i * DAY_MS));

async function relkind(sql: SqlClient, table: string): Promise<string | undefined> {
  const { rows } = await sql.query<{ kind: string }>('SELECT relkind::text AS kind FROM pg_class WHERE oid = to_regclass($1)', [table]);
  return rows[0]?.kind;
}

async function versions(sql: SqlClient): Promise<{ version: number; name: string }[]> {
  return (await sql.query<{ version: number; name: string }>('SELECT version, name FROM audit_schema_migrations ORDER BY version')).rows;
}

async function storedCopies(sql: SqlClient, ids: string[]): Promise<number> {
  const { rows } = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE event_id = ANY($1::uuid[])', [ids]);
  return rows[0]!.n;
}

/** Writes rows into the unpartitioned table of the old schema, the way the old worker did. */
async function insertOld(sql: SqlClient, events: AuditEvent[]): Promise<void> {
  for (const e of events) {
    await sql.query(`INSERT INTO audit_events SELECT * FROM jsonb_populate_record(NULL::audit_events, $1::jsonb)`, [JSON.stringify({ ...e, stored_at: iso(NOW) })]);
  }
}

for (const backend of STORE_BACKENDS) {
  describe(`audit store at scale on ${backend.name}: migrations, daily partitions, retention`, function () {
    this.timeout(120_000);
    let sql: SqlClient;
    let store: EventStore;
    let openEmpty: () => Promise<SqlClient>;
    let cleanup: () => Promise<void>;
    let sub: string;

    before(async () => {
      const opened = await backend.open();
      ({ sql, openEmpty, cleanup } = opened);
      store = new EventStore(sql, { now: () => NOW });
      await store.migrate();
    });
    after(async () => cleanup?.());
    beforeEach(() => {
      sub = `user-${randomUUID()}`;
    });

    it('records each migration once, in order, and applies none on a later start', async () => {
      expect(await versions(sql)).to.deep.equal(MIGRATIONS.map(({ version, name }) => ({ version, name })));
      expect(await runMigrations(sql)).to.deep.equal([]);
      await store.migrate();
      expect(await versions(sql)).to.have.length(MIGRATIONS.length);
      expect(await relkind(sql, 'audit_events')).to.equal('p');
      expect(await partitionDays(sql)).to.include.members(daysAhead());
    });

    it('refuses to start on a database migrated by a newer worker', async () => {
      const newer = [...MIGRATIONS].slice(0, 3);
      let thrown: Error | undefined;
      try {
        await runMigrations(sql, newer);
      } catch (err) {
        thrown = err as Error;
      }
      expect(thrown?.message).to.equal(`the audit store is at schema version ${MIGRATIONS.length}, newer than this worker knows (3): run a newer worker`);
    });

    it('adopts a database made before versioned migrations, keeping every row, now partitioned by day', async () => {
      const older = await openEmpty();
      await older.exec(UNVERSIONED_SCHEMA);
      // Events of gateways older than trace_id and config_hash, as such a database holds them.
      const old = { trace_id: null, config_hash: null };
      const rows = [
        ...auditEvents(3, { sub, ...old }, daysAgo(2)),
        auditEvent({ sub, ts: iso(daysAgo(9)), truncated: ['path'], path: '/cut', ...old }),
        auditEvent({ sub, ts: iso(NOW), route: null, consumer: null, jti: null, rate_limit: null, ...old }),
      ];
      await insertOld(older, rows);
      await older.query(
        `INSERT INTO audit_security_events (event_id, ts, kind, actor, subject_kind, subject, reason) VALUES ($1, now(), 'revoke', 'admin-cli', 'jti', 'j1', 'leaked')`,
        [randomUUID()],
      );

      const adopted = new EventStore(older);
      await adopted.migrate();

      expect(await relkind(older, 'audit_events')).to.equal('p');
      expect(await relkind(older, 'audit_events_unpartitioned')).to.equal(undefined);
      expect(await versions(older)).to.have.length(MIGRATIONS.length);
      const page = await adopted.query(filter({ sub }));
      expect(page.events).to.deep.equal([...rows].sort(newestFirst));
      expect(await partitionDays(older)).to.include.members([utcDay(daysAgo(9)), utcDay(daysAgo(2)), ...daysAhead()]);
      // The other tables are as they were, rows included.
      expect((await older.query('SELECT count(*)::int AS n FROM audit_security_events')).rows).to.deep.equal([{ n: 1 }]);
      // A redelivery of an event stored before the change is still known.
      expect(await adopted.insert(rows)).to.equal(0);
      expect(await storedCopies(older, rows.map((e) => e.event_id))).to.equal(rows.length);
    });

    it('stores a batch delivered twice once, and an event sent in two batches once', async () => {
      const batch = auditEvents(5, { sub });
      expect(await store.insert(batch)).to.equal(5);
      expect(await store.insert(batch)).to.equal(0);
      const again = auditEvent({ sub });
      expect(await store.insert([batch[2]!, again])).to.equal(1);
      expect(await store.insert([again, batch[4]!])).to.equal(0);
      expect(await storedCopies(sql, [...batch, again].map((e) => e.event_id))).to.equal(6);
    });

    it('stores events days late in partitions made for their days, and reads them back', async () => {
      const late = [auditEvent({ sub, ts: iso(daysAgo(5)) }), auditEvent({ sub, ts: iso(daysAgo(40)) }), auditEvent({ sub, ts: iso(NOW) })];
      expect(await store.insert(late)).to.equal(3);
      expect(await partitionDays(sql)).to.include.members([utcDay(daysAgo(5)), utcDay(daysAgo(40))]);
      expect((await store.query(filter({ sub }))).events).to.deep.equal([...late].sort(newestFirst));
      const { rows } = await sql.query<{ partition: string }>('SELECT tableoid::regclass::text AS partition FROM audit_events WHERE event_id = $1', [late[1]!.event_id]);
      expect(rows).to.deep.equal([{ partition: partitionName(utcDay(daysAgo(40))) }]);
    });

    it('sets aside an event more than a day ahead or older than the retention, with its code, and stores the rest', async () => {
      const kept = new EventStore(sql, { retentionDays: 30, now: () => NOW });
      const ahead = auditEvent({ sub, ts: iso(NOW + 25 * HOUR_MS) });
      const soon = auditEvent({ sub, ts: iso(NOW + 23 * HOUR_MS) });
      const expired = auditEvent({ sub, ts: iso(daysAgo(31)) });
      const recent = auditEvent({ sub, ts: iso(daysAgo(29)) });
      const setAside: SetAside[] = [];
      const result = await insertIsolating(kept, [ahead, soon, expired, recent], (s) => setAside.push(s));
      expect(result).to.deep.equal({ stored: 2, setAside: 2 });
      expect(setAside.map((s) => [s.event.event_id, s.sqlstate])).to.deep.equal([
        [ahead.event_id, TS_IN_FUTURE],
        [expired.event_id, TS_PAST_RETENTION],
      ]);
      expect((await kept.query(filter({ sub }))).events.map((e) => e.event_id)).to.deep.equal([soon.event_id, recent.event_id]);
      const { rows } = await sql.query<{ event_id: string; error_code: string }>(
        'SELECT event_id::text, error_code FROM audit_events_rejected WHERE event_id = ANY($1::uuid[]) ORDER BY error_code',
        [[ahead.event_id, expired.event_id]],
      );
      expect(rows).to.deep.equal([
        { event_id: ahead.event_id, error_code: TS_IN_FUTURE },
        { event_id: expired.event_id, error_code: TS_PAST_RETENTION },
      ]);
      expect(await partitionDays(sql)).not.to.include(utcDay(daysAgo(31)));
    });

    it("makes a day's partition again when another worker dropped it since this one made it", async () => {
      const day = utcDay(daysAgo(12));
      expect(await store.insert([auditEvent({ sub, ts: iso(daysAgo(12)) })])).to.equal(1);
      await sql.exec(`DROP TABLE ${partitionName(day)}`); // another worker's retention
      const late = auditEvent({ sub, ts: iso(daysAgo(12) + 60_000) });
      expect(await store.insert([late])).to.equal(1);
      expect((await store.query(filter({ sub }))).events.map((e) => e.event_id)).to.deep.equal([late.event_id]);
    });

    it('retention drops the partitions older than the limit, keeps the boundary day and everything newer', async () => {
      const db = await openEmpty();
      const fresh = new EventStore(db, { now: () => NOW });
      await fresh.migrate();
      const limit = 5;
      const boundaryStart = Date.parse(`${utcDay(daysAgo(limit))}T00:00:00Z`);
      const dropped = [auditEvent({ sub, ts: iso(daysAgo(9)) }), auditEvent({ sub, ts: iso(daysAgo(6)) }), auditEvent({ sub, ts: iso(boundaryStart - 1) })];
      const kept = [
        auditEvent({ sub, ts: iso(boundaryStart) }), // the first instant of the boundary day
        auditEvent({ sub, ts: iso(daysAgo(limit)) }), // exactly the limit ago
        auditEvent({ sub, ts: iso(daysAgo(4)) }),
        auditEvent({ sub, ts: iso(NOW) }),
        auditEvent({ sub, ts: iso(NOW + 20 * HOUR_MS) }),
      ];
      expect(await fresh.insert([...dropped, ...kept])).to.equal(8);
      const capture = captureLogger();
      const retention = new Retention(fresh, limit, capture.logger, () => NOW);

      const run = await retention.run();

      const droppedDays = [...new Set(dropped.map((e) => utcDay(Date.parse(e.ts))))].sort();
      expect(run).to.deep.equal({ created: [], dropped: droppedDays });
      expect(await partitionDays(db)).to.deep.equal([...new Set([...kept.map((e) => utcDay(Date.parse(e.ts))), ...daysAhead()])].sort());
      expect((await fresh.query(filter({ sub, limit: '100' }))).events).to.deep.equal([...kept].sort(newestFirst));
      expect(capture.lines.filter((l) => l.code === 'audit_partitions_dropped')).to.deep.equal([
        {
          level: 'info',
          message: 'audit partitions dropped: older than the retention limit',
          code: 'audit_partitions_dropped',
          days: droppedDays,
          retention_days: limit,
          kept_from: iso(boundaryStart),
        },
      ]);
      // A second run finds nothing to drop and logs nothing.
      expect(await retention.run()).to.deep.equal({ created: [], dropped: [] });
      expect(capture.lines.filter((l) => l.code === 'audit_partitions_dropped')).to.have.length(1);
    });

    it('retention a day later makes the next day ahead and drops the day that aged out', async () => {
      const db = await openEmpty();
      let now = NOW;
      const fresh = new EventStore(db, { now: () => now });
      await fresh.migrate();
      const old = auditEvent({ sub, ts: iso(daysAgo(3)) });
      expect(await fresh.insert([old])).to.equal(1);
      const retention = new Retention(fresh, 3, captureLogger().logger, () => now);
      expect(await retention.run()).to.deep.equal({ created: [], dropped: [] });
      now = NOW + DAY_MS;
      expect(await retention.run()).to.deep.equal({ created: [utcDay(NOW + (DAYS_AHEAD + 1) * DAY_MS)], dropped: [utcDay(daysAgo(3))] });
      expect((await fresh.query(filter({ sub }))).events).to.deep.equal([]);
    });
  });
}

describe('audit store migrations, several workers starting at once on PostgreSQL', function () {
  this.timeout(120_000);
  const WORKERS = 8;
  const schemas: string[] = [];
  const clients: SqlClient[] = [];

  async function openWorkers(schema: string): Promise<SqlClient[]> {
    const opened = await Promise.all(Array.from({ length: WORKERS }, () => openPostgres(PG_URL, schema, { max: 2 })));
    clients.push(...opened);
    return opened;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => undefined);
    for (const s of schemas.splice(0)) await dropSchema(s);
  });

  it(`${WORKERS} workers migrating a fresh schema at once: every migration applied once, every worker ready`, async () => {
    const schema = `audit_test_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const workers = await openWorkers(schema);
    const applied = await Promise.all(workers.map((w) => runMigrations(w)));
    // Exactly one worker applied them all; the others found them recorded.
    expect(applied.filter((a) => a.length > 0)).to.deep.equal([MIGRATIONS.map((m) => m.version)]);
    await Promise.all(workers.map((w) => new EventStore(w).migrate()));
    expect(await versions(workers[0]!)).to.deep.equal(MIGRATIONS.map(({ version, name }) => ({ version, name })));
    // And they all store at once, into a day none had a partition for.
    const day = daysAgo(3);
    const batches = workers.map(() => auditEvents(20, {}, day));
    const stored = await Promise.all(workers.map((w, i) => new EventStore(w).insert(batches[i]!)));
    expect(stored).to.deep.equal(workers.map(() => 20));
    expect(await partitionDays(workers[0]!)).to.include(utcDay(day));
  });

  it(`${WORKERS} workers adopting a database made before versioned migrations at once: every row kept once`, async () => {
    const schema = `audit_test_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const workers = await openWorkers(schema);
    await workers[0]!.exec(UNVERSIONED_SCHEMA);
    const rows = [...auditEvents(50, {}, NOW), ...auditEvents(50, {}, daysAgo(3))];
    await insertOld(workers[0]!, rows);
    await Promise.all(workers.map((w) => new EventStore(w).migrate()));
    expect(await relkind(workers[0]!, 'audit_events')).to.equal('p');
    expect(await storedCopies(workers[0]!, rows.map((e) => e.event_id))).to.equal(100);
    expect((await workers[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows).to.deep.equal([{ n: 100 }]);
  });
});

describe('audit store retention as the worker runs it, on PostgreSQL', function () {
  this.timeout(60_000);
  let schema: string;
  let sql: SqlClient;

  beforeEach(async () => {
    schema = `audit_test_${randomBytes(6).toString('hex')}`;
    sql = await openPostgres(PG_URL, schema);
  });
  afterEach(async () => {
    await sql.close().catch(() => undefined);
    await dropSchema(schema);
  });

  it('runs on its timer: a day is dropped once the clock has moved past its retention', async () => {
    let now = NOW;
    const store = new EventStore(sql, { now: () => now });
    await store.migrate();
    const old = auditEvent({ ts: iso(daysAgo(2)) });
    expect(await store.insert([old])).to.equal(1);
    const capture = captureLogger();
    const retention = new Retention(store, 2, capture.logger, () => now);
    retention.start(20);
    try {
      now = NOW + DAY_MS;
      const line = await eventually(() => capture.lines.find((l) => l.code === 'audit_partitions_dropped'), 10_000, 'the timed retention run');
      expect(line.days).to.deep.equal([utcDay(daysAgo(2))]);
      expect(await storedCopies(sql, [old.event_id])).to.equal(0);
    } finally {
      await retention.stop();
    }
  });

  it('logs a run that fails and lets the caller go on', async () => {
    const store = new EventStore(sql);
    await store.migrate();
    await sql.close();
    const capture = captureLogger();
    await new Retention(store, 30, capture.logger).runLogged();
    expect(capture.lines.map((l) => [l.level, l.code, l.message])).to.deep.equal([['warn', 'audit_retention_failed', 'audit retention run failed, tried again at the next']]);
  });
});
