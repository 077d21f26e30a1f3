import { expect } from 'chai';
import { BatchAge } from '../../auth-sidecar/service/batch-age.js';

describe('batch age', () => {
  // The sender's clock runs 5,000 ms behind ours; a batch normally takes 1 ms to arrive.
  const OFFSET = 5_000;

  it('is the extra wait of a batch over the quickest one the stream has seen', () => {
    const age = new BatchAge();
    expect(age.ageMs(100, 100 + OFFSET + 1)).to.equal(0);
    expect(age.ageMs(200, 200 + OFFSET + 3)).to.equal(2);
    // Sent at 300, read 250 ms late (the reader was stopped).
    expect(age.ageMs(300, 300 + OFFSET + 251)).to.equal(250);
  });

  it('is 0 for a sender that sends no time', () => {
    expect(new BatchAge().ageMs(0, 1234)).to.equal(0);
  });

  it('forgets minimums older than two windows, so clock drift does not add up', () => {
    const age = new BatchAge();
    expect(age.ageMs(100, 100 + OFFSET + 1)).to.equal(0);
    // 25 s later the clocks drifted 5 ms apart: the last window still remembers the old minimum...
    expect(age.ageMs(25_000, 25_000 + OFFSET + 6)).to.equal(5);
    // ...and once it rotates out, the new one rules.
    expect(age.ageMs(36_000, 36_000 + OFFSET + 6)).to.equal(0);
    expect(age.ageMs(36_100, 36_100 + OFFSET + 106)).to.equal(100);
  });
});
