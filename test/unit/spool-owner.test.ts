import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DiskSpool } from '../../gateway/audit/disk-spool.js';
import { OWNER_FILE, SpoolOwnedError, SpoolOwner, type SpoolOwnerOptions } from '../../gateway/audit/spool-owner.js';
import { auditEvents } from '../helpers/audit-events.js';

const HOST = 'host-a';

describe('spool ownership', () => {
  let root: string;
  let now: number;
  const alive = new Set<number>();

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'spool-owner-'));
    now = Date.now();
    alive.clear();
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  function owner(id: string, options: Partial<SpoolOwnerOptions> = {}): { owner: SpoolOwner; spool: DiskSpool } {
    const o = new SpoolOwner(root, id, { heartbeatMs: 1_000, staleMs: 30_000, now: () => now, host: HOST, pid: 100, pidAlive: (p) => alive.has(p), ...options });
    const spool = new DiskSpool(o.dir, 1 << 20);
    o.claim();
    return { owner: o, spool };
  }

  it('refuses a folder whose owner still runs on this host, naming it', () => {
    alive.add(200);
    owner('gw-1', { pid: 200 });
    expect(() => owner('gw-1', { pid: 300 })).to.throw(SpoolOwnedError, /owned by a live gateway \(gw-1, pid 200 on host-a/);
  });

  it('takes over a folder whose owner process is gone, or was a former life of this pid', () => {
    owner('gw-1', { pid: 200 }); // 200 is not alive
    expect(() => owner('gw-1', { pid: 300 })).not.to.throw();
    alive.add(300);
    expect(() => owner('gw-1', { pid: 300 })).not.to.throw(); // same pid: a restarted container is pid 1 again
  });

  it('trusts another host by its heartbeat only: fresh is live, stale is gone', async () => {
    const remote = owner('gw-remote', { host: 'host-b', pid: 200 });
    await remote.spool.write(auditEvents(2));
    const local = owner('gw-local', { pid: 300 });
    expect(await local.owner.adoptOrphans(local.spool)).to.equal(0);
    const stale = new Date(now - 31_000);
    await utimes(join(root, 'gw-remote', OWNER_FILE), stale, stale);
    expect(await local.owner.adoptOrphans(local.spool)).to.equal(1);
    expect(existsSync(join(root, 'gw-remote'))).to.equal(false);
    expect(local.spool.list()).to.have.length(1);
  });

  it('adopts the batches of a dead gateway of this host and removes its folder, leaving live ones alone', async () => {
    alive.add(201);
    const dead = owner('gw-dead', { pid: 200 });
    const live = owner('gw-live', { pid: 201 });
    const [a, b] = [auditEvents(3), auditEvents(4)];
    await dead.spool.write(a);
    await live.spool.write(b);
    const me = owner('gw-me', { pid: 300 });
    expect(await me.owner.adoptOrphans(me.spool)).to.equal(1);
    expect(await me.spool.read(me.spool.list()[0]!)).to.deep.equal(a);
    expect(existsSync(join(root, 'gw-dead'))).to.equal(false);
    expect(live.spool.list()).to.have.length(1);
  });

  it('adopts an ownerless folder (an older gateway, or a crash before claiming) only once it is stale', async () => {
    const legacy = join(root, 'legacy-host');
    await mkdir(legacy);
    await writeFile(join(legacy, '000000000000001-1-000000000.json'), JSON.stringify(auditEvents(1)));
    const me = owner('gw-me', { pid: 300 });
    expect(await me.owner.adoptOrphans(me.spool)).to.equal(0);
    now += 31_000;
    expect(await me.owner.adoptOrphans(me.spool)).to.equal(1);
  });

  it('gives its folder up on a clean stop, removing it when empty, keeping it when batches remain', async () => {
    const empty = owner('gw-empty');
    empty.owner.release();
    expect(existsSync(empty.owner.dir)).to.equal(false);
    const full = owner('gw-full');
    await full.spool.write(auditEvents(1));
    full.owner.release();
    expect(existsSync(join(full.owner.dir, OWNER_FILE))).to.equal(false);
    expect(full.spool.list()).to.have.length(1);
  });
});
