/** Active health checks against real HTTP servers: failed probes take a target out, one passing probe brings it back at once. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { UpstreamPool } from '../../gateway/upstream/pool.js';
import { Prober } from '../../gateway/upstream/probe.js';
import { freePort } from '../helpers/net.js';

describe('upstream probes', () => {
  let server: Server;
  let status = 200;
  const paths: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('probes <target path><probe path>; two failed probes take the target out, one passing probe brings it back', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/svc`;
    const closed = `http://127.0.0.1:${await freePort()}`;
    const pool = new UpstreamPool('p', [{ url, weight: 1 }, { url: closed, weight: 1 }], 'round_robin', { failures: 2, cooldown_s: 60, fail_statuses: [] }, []);
    const prober = new Prober(pool, { path: '/healthz', interval_s: 60, timeout_ms: 1_000 });
    const [live, dead] = pool.targets as [(typeof pool.targets)[0], (typeof pool.targets)[0]];

    expect(await prober.check(live)).to.equal(true);
    expect(paths).to.deep.equal(['/svc/healthz']);
    status = 500;
    expect(await prober.check(live)).to.equal(false);
    expect(pool.isIn(live)).to.equal(true);
    expect(await prober.check(live)).to.equal(false);
    expect(pool.isIn(live)).to.equal(false);
    status = 204;
    expect(await prober.check(live)).to.equal(true);
    expect(pool.isIn(live)).to.equal(true);

    expect(await prober.check(dead)).to.equal(false);
    expect(await prober.check(dead)).to.equal(false);
    expect(pool.isIn(dead)).to.equal(false);
    pool.close();
  });
});
