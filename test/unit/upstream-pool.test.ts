/** The pool's choices and health, with a hand-moved clock: weights, least connections, failures, cool-down, probation. */
import { expect } from 'chai';
import { UpstreamPool, type Target } from '../../gateway/upstream/pool.js';

const HEALTH = { failures: 2, cooldown_s: 10, fail_statuses: [503] };

function pool(weights: number[], balance: 'round_robin' | 'least_connections' = 'round_robin', clock = { now: 0 }): UpstreamPool {
  const targets = weights.map((weight, i) => ({ url: `http://10.0.0.${i + 1}:80`, weight }));
  return new UpstreamPool('p', targets, balance, HEALTH, ['GET'], () => clock.now);
}

/** Picks `n` times, finishing each at once; counts per target url. */
function share(p: UpstreamPool, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const t = p.pick()!;
    counts[t.url] = (counts[t.url] ?? 0) + 1;
    p.finished(t);
  }
  return counts;
}

describe('upstream pool', () => {

  it('spreads requests by weight, evenly (smooth weighted round robin: no burst on the heavy target)', () => {
    const p = pool([3, 1]);
    const order = Array.from({ length: 8 }, () => {
      const t = p.pick()!;
      p.finished(t);
      return t.index;
    });
    expect(order).to.deep.equal([0, 0, 1, 0, 0, 0, 1, 0]);
    expect(share(pool([5, 3, 2]), 1000)).to.deep.equal({ 'http://10.0.0.1:80': 500, 'http://10.0.0.2:80': 300, 'http://10.0.0.3:80': 200 });
    p.close();
  });

  it('least connections: the fewest requests in flight per weight', () => {
    const p = pool([1, 2], 'least_connections');
    const held: Target[] = [];
    for (let i = 0; i < 6; i++) held.push(p.pick()!);
    expect(held.map((t) => t.index).sort()).to.deep.equal([0, 0, 1, 1, 1, 1]);
    held.filter((t) => t.index === 1).forEach((t) => p.finished(t));
    expect(p.pick()!.index).to.equal(1);
    p.close();
  });

  it('takes a target out after `failures` in a row, for the cool-down; back on probation, one more failure takes it out again', () => {
    const clock = { now: 1_000 };
    const p = pool([1, 1], 'round_robin', clock);
    const [a, b] = p.targets as [Target, Target];
    p.failed(b);
    expect(p.isIn(b)).to.equal(true);
    p.answered(b, 200); // a success resets the count
    p.failed(b);
    expect(p.isIn(b)).to.equal(true);
    p.answered(b, 503); // a fail_statuses answer is a failure
    expect(p.isIn(b)).to.equal(false);
    expect(Object.keys(share(p, 10))).to.deep.equal([a.url]);
    clock.now += 10_000;
    expect(p.isIn(b)).to.equal(true);
    p.failed(b);
    expect(p.isIn(b)).to.equal(false);
    clock.now += 10_000;
    p.succeeded(b);
    p.failed(b);
    expect(p.isIn(b)).to.equal(true);
    p.close();
  });

  it('answers no target when every one is out, and never the one a retry excludes', () => {
    const p = pool([1, 1]);
    const [a, b] = p.targets as [Target, Target];
    expect(p.pick(a)).to.equal(b);
    for (const t of [a, b]) {
      p.failed(t);
      p.failed(t);
    }
    expect(p.pick()).to.equal(undefined);
    p.close();
  });

  it('never takes out the one target of a plain URL', () => {
    const p = UpstreamPool.ofUrl('http://127.0.0.1:1');
    const only = p.targets[0]!;
    for (let i = 0; i < 10; i++) p.failed(only);
    expect(p.pick()).to.equal(only);
    expect(p.pick(only)).to.equal(undefined);
    p.close();
  });
});
