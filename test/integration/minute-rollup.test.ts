/**
 * The minute rollup (audit-worker/store/minute-rollup.ts) on both stores: what the sealer rolls
 * up, and the whole-traffic timeline and top read from it, each checked against the answer
 * computed here from the fixture events themselves, with events sealed and not yet sealed,
 * ranges that cut minutes, a redelivered batch, a catch-up after sealers that did not roll up,
 * and retention.
 */
import { expect } from 'chai';
import { ChainSealer } from '../../audit-worker/chain/sealer.js';
import { parseTimelineQuery, parseTopQuery } from '../../audit-worker/investigation/params.js';
import { timeline } from '../../audit-worker/investigation/timeline.js';
import { top } from '../../audit-worker/investigation/top.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import type { SqlClient } from '../../audit-worker/store/sql-client.js';
import type { AuditEvent } from '../../common/audit-event.js';
import { silentLogger } from '../../common/logger.js';
import { auditEvent } from '../helpers/audit-events.js';
import { STORE_BACKENDS } from '../helpers/audit-stores.js';

const DAY_MS = 86_400_000;
const ROUTES = ['users', 'orders', null] as const;
const OUTCOMES = [
  { decision: 'allow', reason: null, status: 200 },
  { decision: 'deny', reason: 'token_revoked', status: 401 },
  { decision: 'deny', reason: 'rate_limited', status: 429 },
] as const;

/** `n` events from `start`, `stepMs` apart, cycling through routes and outcomes. */
function events(n: number, start: number, stepMs: number): AuditEvent[] {
  return Array.from({ length: n }, (_, i) => auditEvent({ ts: new Date(start + i * stepMs).toISOString(), route: ROUTES[i % 3]!, ...OUTCOMES[(i * 7) % 3]! }));
}

/** The timeline computed from the events themselves: "bucket start|decision|reason" → count. */
function expectedTimeline(all: AuditEvent[], since: number, until: number, bucketS: number, route?: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of all) {
    const t = Date.parse(e.ts);
    if (t < since || t >= until || (route !== undefined && e.route !== route)) continue;
    const key = `${new Date(Math.floor(t / (bucketS * 1000)) * bucketS * 1000).toISOString()}|${e.decision}|${e.reason}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

async function timelineCounts(sql: SqlClient, query: Record<string, string>): Promise<Map<string, number>> {
  const answer = await timeline(sql, parseTimelineQuery(query));
  const counts = new Map<string, number>();
  for (const b of answer.buckets) for (const c of b.counts) counts.set(`${b.start}|${c.decision}|${c.reason}`, c.count);
  return counts;
}

for (const backend of STORE_BACKENDS) {
  describe(`minute rollup on ${backend.name}`, function () {
    this.timeout(60_000);
    let sql: SqlClient;
    let cleanup: () => Promise<void>;
    let store: EventStore;
    const sealer = (): ChainSealer => new ChainSealer(sql, silentLogger(), { bucketSeconds: 10, marginSeconds: 600, maxLinksPerRun: 10_000 });
    // Two hours of traffic ending 10 minutes ago, one event every 7 s, and a day three days back.
    const hourStart = Math.floor((Date.now() - 2 * 3_600_000) / 60_000) * 60_000;
    const recent = events(1000, hourStart, 7_000);
    const old = events(50, hourStart - 3 * DAY_MS, 11_000);
    const sealedPart = [...recent.slice(0, 600), ...old];
    const unsealedPart = recent.slice(600);

    before(async () => {
      ({ sql, cleanup } = await backend.open());
      store = new EventStore(sql);
      await store.migrate();
      await store.insert(sealedPart);
      // Stored an hour back, so their buckets are closed and sealed (and rolled up) at once; the
      // sealer's 10-minute margin leaves everything stored during the test unsealed.
      await sql.query(`UPDATE audit_events SET stored_at = now() - interval '1 hour'`);
      for (let links = await sealer().sealOnce(); links.length > 0; links = await sealer().sealOnce());
      await store.insert(unsealedPart); // stored now: not sealed, not rolled up
    });
    after(async () => cleanup?.());

    const rollupTotal = async (): Promise<number> => Number((await sql.query<{ n: string }>('SELECT coalesce(sum(count), 0)::text AS n FROM audit_rollup_minute')).rows[0]!.n);

    it('holds every sealed event once, and none stored since', async () => {
      expect(await rollupTotal()).to.equal(sealedPart.length);
    });

    it('answers the whole-traffic timeline exactly, minutes cut at both ends, sealed and unsealed events alike', async () => {
      const since = hourStart + 30_500;
      const until = hourStart + 2 * 3_600_000 - 17_250;
      const query = { since: new Date(since).toISOString(), until: new Date(until).toISOString() };
      for (const bucket of [60, 300]) {
        expect(await timelineCounts(sql, { ...query, bucket: `${bucket}s` })).to.deep.equal(expectedTimeline(recent, since, until, bucket));
      }
      expect(await timelineCounts(sql, { ...query, bucket: '60s', route: 'orders' })).to.deep.equal(expectedTimeline(recent, since, until, 60, 'orders'));
      // A range inside one minute, and one on another day.
      expect(await timelineCounts(sql, { since: new Date(hourStart + 5_000).toISOString(), until: new Date(hourStart + 50_000).toISOString(), bucket: '1m' }))
        .to.deep.equal(expectedTimeline(recent, hourStart + 5_000, hourStart + 50_000, 60));
      const oldSince = hourStart - 3 * DAY_MS;
      expect(await timelineCounts(sql, { since: new Date(oldSince).toISOString(), until: new Date(oldSince + 3_600_000).toISOString(), bucket: '10m' }))
        .to.deep.equal(expectedTimeline(old, oldSince, oldSince + 3_600_000, 600));
    });

    it('ranks reasons and routes from the rollup exactly, with decision and route filters', async () => {
      const since = new Date(hourStart + 61_000).toISOString();
      const until = new Date(Date.now()).toISOString();
      const inRange = recent.filter((e) => e.ts >= since && e.ts < until);
      const ranked = (column: 'reason' | 'route', list: AuditEvent[]) => {
        const counts = new Map<string, { value: string; count: number; allow: number; deny: number }>();
        for (const e of list) {
          const value = e[column];
          if (value === null) continue;
          const row = counts.get(value) ?? { value, count: 0, allow: 0, deny: 0 };
          row.count++;
          row[e.decision]++;
          counts.set(value, row);
        }
        return [...counts.values()].sort((a, b) => b.count - a.count || a.value.localeCompare(b.value));
      };
      expect((await top(sql, parseTopQuery({ by: 'reason', since, until }))).rows).to.deep.equal(ranked('reason', inRange));
      expect((await top(sql, parseTopQuery({ by: 'route', since, until, decision: 'deny' }))).rows).to.deep.equal(ranked('route', inRange.filter((e) => e.decision === 'deny')));
      expect((await top(sql, parseTopQuery({ by: 'reason', since, until, route: 'users' }))).rows).to.deep.equal(ranked('reason', inRange.filter((e) => e.route === 'users')));
    });

    it('counts a redelivered batch and a second sealer run nothing more', async () => {
      const before = await rollupTotal();
      expect(await store.insert(sealedPart.slice(0, 200))).to.equal(0);
      await sealer().sealOnce();
      expect(await rollupTotal()).to.equal(before);
    });

    it('catches up from its own frontier after sealers that did not roll up (a worker of the version before)', async () => {
      await sql.exec(`TRUNCATE audit_rollup_minute; UPDATE audit_rollup_state SET rolled_up_to = '-infinity'`);
      await sealer().sealOnce();
      expect(await rollupTotal()).to.equal(sealedPart.length);
      const since = hourStart;
      const until = hourStart + 3_600_000;
      expect(await timelineCounts(sql, { since: new Date(since).toISOString(), until: new Date(until).toISOString(), bucket: '1m' })).to.deep.equal(expectedTimeline(recent, since, until, 60));
    });

    it("drops the counts of the days retention dropped, with their partitions, and keeps the rest", async () => {
      const before = await rollupTotal();
      const dropped = await store.partitions.dropEndedBy(Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS);
      expect(dropped).to.include(new Date(hourStart - 3 * DAY_MS).toISOString().slice(0, 10));
      expect(await rollupTotal()).to.equal(before - old.length);
      const oldSince = hourStart - 3 * DAY_MS;
      expect((await timelineCounts(sql, { since: new Date(oldSince).toISOString(), until: new Date(oldSince + 3_600_000).toISOString(), bucket: '10m' })).size).to.equal(0);
    });
  });
}
