/** The pool's own cost per request, in process: pick, then finish, for a one-URL pool and a pool of two weighted targets. */
import { UpstreamPool } from '../gateway/upstream/pool.js';

const PICKS = 2_000_000;

function nsPerPick(pool: UpstreamPool): number {
  for (let i = 0; i < 100_000; i++) pool.finished(pool.pick()!); // warm up
  const started = process.hrtime.bigint();
  for (let i = 0; i < PICKS; i++) pool.finished(pool.pick()!);
  return Number(process.hrtime.bigint() - started) / PICKS;
}

export function poolPickCost(): { one: number; two: number } {
  const one = UpstreamPool.ofUrl('http://127.0.0.1:1');
  const two = new UpstreamPool('pair', [{ url: 'http://127.0.0.1:1', weight: 3 }, { url: 'http://127.0.0.1:2', weight: 1 }], 'round_robin', { failures: 3, cooldown_s: 10, fail_statuses: [] }, ['GET']);
  const cost = { one: nsPerPick(one), two: nsPerPick(two) };
  one.close();
  two.close();
  return cost;
}
