import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DiskSpool } from '../../gateway/audit/disk-spool.js';
import { auditEvents } from '../helpers/audit-events.js';

describe('disk spool', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'spool-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('stops counting the bytes of a batch it sets aside', async () => {
    await writeFile(join(dir, '000000000000001-1-000000000.json'), 'not json');
    const spool = new DiskSpool(dir, 1024);
    expect(spool.size).to.equal(8);
    await spool.setAside('000000000000001-1-000000000.json');
    expect(spool.size).to.equal(0);
    expect(new DiskSpool(dir, 1024).size).to.equal(0);
  });

  it('lists batches oldest first and counts the bytes a restart finds', async () => {
    const spool = new DiskSpool(dir, 1 << 20);
    const [first, second] = [auditEvents(2), auditEvents(3)];
    await spool.write(first);
    await spool.write(second);
    const names = spool.list();
    expect(await spool.read(names[0]!)).to.deep.equal(first);
    expect(await spool.read(names[1]!)).to.deep.equal(second);
    expect(new DiskSpool(dir, 1 << 20).size).to.equal(spool.size);
  });

  it('keeps its byte count when a write fails, so failed writes never make it look full', async () => {
    const events = auditEvents(3);
    const bytes = Buffer.byteLength(JSON.stringify(events));
    const spool = new DiskSpool(join(dir, 'spool'), bytes * 2);
    await rm(spool.dir, { recursive: true });
    for (let i = 0; i < 3; i++) {
      const failed = await spool.write(events).then(() => false, () => true);
      expect(failed).to.equal(true);
    }
    expect(spool.size).to.equal(0);
    await mkdir(spool.dir);
    expect(await spool.write(events)).to.equal(true);
    expect(await spool.write(events)).to.equal(true);
    expect(spool.size).to.equal(bytes * 2);
    expect(await readdir(spool.dir)).to.have.length(2); // no temporary file left behind
  });

  it('reports its batches, bytes and the age of the oldest batch', async () => {
    let now = 1_700_000_000_000;
    const spool = new DiskSpool(dir, 1 << 20, () => now);
    expect(spool.stats()).to.deep.equal({ batches: 0, bytes: 0, oldest_age_s: 0 });
    await spool.write(auditEvents(1));
    now += 45_000;
    await spool.write(auditEvents(2));
    now += 30_000;
    expect(spool.stats()).to.deep.equal({ batches: 2, bytes: spool.size, oldest_age_s: 75 });
  });

  it('adopts every batch of another folder, counting its bytes, and names never collide', async () => {
    const other = new DiskSpool(join(dir, 'gone'), 1 << 20);
    const mine = new DiskSpool(join(dir, 'mine'), 1 << 20);
    const [a, b, c] = [auditEvents(1), auditEvents(2), auditEvents(3)];
    await other.write(a);
    await mine.write(b);
    await other.write(c);
    expect(await mine.adopt(other.dir)).to.equal(2);
    expect(other.list()).to.deep.equal([]);
    const batches = await Promise.all(mine.list().map((n) => mine.read(n)));
    expect(batches).to.have.deep.members([a, b, c]);
    expect(new DiskSpool(mine.dir, 1 << 20).size).to.equal(mine.size);
    expect(await mine.adopt(join(dir, 'no-such-folder'))).to.equal(0);
  });
});
