import { expect } from 'chai';
import { StallClock } from '../../auth-sidecar/service/stall-clock.js';

/** Blocks the event loop, as a stopped or busy process does. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('stall clock', () => {
  it('reports nothing for a pause within its tolerance, and a long stall while it lasts', () => {
    const clock = new StallClock(10, 50, 100);
    block(30);
    expect(clock.stallMs()).to.equal(0);
    block(120);
    expect(clock.stallMs()).to.be.within(100, 400);
  });

  it('keeps reporting a stall for its window after it ended, then forgets it', async () => {
    const clock = new StallClock(10, 50, 100);
    block(150);
    await new Promise((r) => setTimeout(r, 15)); // the clock's timer sees the stall end
    expect(clock.stallMs()).to.be.within(100, 400);
    await new Promise((r) => setTimeout(r, 150));
    expect(clock.stallMs()).to.equal(0);
  });
});
