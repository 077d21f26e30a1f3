import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
});
