import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { AuditEvent } from '../../common/audit-event.js';
import { silentLogger } from '../../common/logger.js';
import { buildQueryApi } from '../../audit-worker/query-api.js';
import { newWorkerStats } from '../../audit-worker/worker-stats.js';
import { EventStore } from '../../audit-worker/store/event-store.js';
import { openPGlite, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { auditEvents } from '../helpers/audit-events.js';

const TOKEN = 'test-admin-token-0123456789';

async function listen(server: Server): Promise<string> {
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('audit query API', function () {
  this.timeout(60_000);
  let dir: string;
  let sql: SqlClient;
  let store: EventStore;
  let server: Server;
  let base: string;
  const sub = `user-${randomUUID()}`;
  let events: AuditEvent[];
  const stats = { ...newWorkerStats(), events_set_aside: 2 };

  const get = (path: string, token?: string) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-api-'));
    sql = await openPGlite(join(dir, 'db'));
    store = new EventStore(sql);
    await store.migrate();
    events = auditEvents(7, { sub });
    await store.insert(events);
    server = buildQueryApi({ store, adminToken: TOKEN, logger: silentLogger(), health: () => stats }).listen(0, '127.0.0.1');
    base = await listen(server);
  });
  after(async () => {
    server?.close();
    await sql?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers the health check without a token, with the worker\'s counts of events set aside and malformed', async () => {
    const res = await get('/healthz');
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: 'ok', events_set_aside: 2, events_malformed: 0, events_stored: 0, events_duplicate: 0 });
    expect(res.headers.get('x-powered-by')).to.equal(null);
  });

  it('refuses a request without a token', async () => {
    const res = await get(`/v1/events?sub=${sub}`);
    expect(res.status).to.equal(401);
    expect(await res.json()).to.deep.equal({ error: 'admin token required', reason: 'unauthorized' });
  });

  it('refuses a wrong token', async () => {
    for (const token of ['wrong', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await get(`/v1/events?sub=${sub}`, token);
      expect(res.status).to.equal(401);
    }
  });

  it('returns the matching events to the admin token', async () => {
    const res = await get(`/v1/events?sub=${sub}`, TOKEN);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ events, next_cursor: null });
  });

  it('refuses a bad filter with a message naming the parameter', async () => {
    const bad = await get(`/v1/events?decision=maybe`, TOKEN);
    expect(bad.status).to.equal(400);
    const body = (await bad.json()) as { error: string; reason: string };
    expect(body.reason).to.equal('bad_request');
    expect(body.error).to.match(/^decision: /);
    const unknown = await get(`/v1/events?subject=alice`, TOKEN);
    expect(unknown.status).to.equal(400);
    expect(((await unknown.json()) as { error: string }).error).to.equal('unknown parameter: subject');
  });

  it('answers 400 naming since or until for a time out of range, never 500', async () => {
    for (const [query, name] of [
      ['since=999999999d', 'since'],
      ['until=999999999d', 'until'],
      ['since=999999d', 'since'],
      ['since=0000-01-01T00:00:00Z', 'since'],
      ['until=0001-01-01T00:00:00%2B01:00', 'until'],
    ] as const) {
      const res = await get(`/v1/events?${query}`, TOKEN);
      expect(res.status, query).to.equal(400);
      const body = (await res.json()) as { error: string; reason: string };
      expect(body.reason, query).to.equal('bad_request');
      expect(body.error, query).to.match(new RegExp(`^${name}: must be between 0001-01-01 and 9999-12-31`));
    }
  });

  it('pages through the events with next_cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`/v1/events?sub=${sub}&limit=3${cursor ? `&cursor=${cursor}` : ''}`, TOKEN);
      expect(res.status).to.equal(200);
      const page = (await res.json()) as { events: AuditEvent[]; next_cursor: string | null };
      seen.push(...page.events.map((e) => e.event_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).to.deep.equal(events.map((e) => e.event_id));
  });

  it('answers 503 admin_disabled when no admin token is configured', async () => {
    const disabled = buildQueryApi({ store, adminToken: undefined, logger: silentLogger(), health: () => stats }).listen(0, '127.0.0.1');
    try {
      const res = await fetch(`${await listen(disabled)}/v1/events`, { headers: { authorization: 'Bearer anything' } });
      expect(res.status).to.equal(503);
      expect(((await res.json()) as { reason: string }).reason).to.equal('admin_disabled');
    } finally {
      disabled.close();
    }
  });
});
