import { expect } from 'chai';
import { CircuitBreaker } from '../../auth-sidecar/limiter/circuit-breaker.js';

describe('circuit breaker', () => {
  it('opens after `failures` in a row, admits one probe after open_ms, closes on its success', () => {
    const clock = { now: 0 };
    const breaker = new CircuitBreaker(3, 1000, () => clock.now);
    breaker.failed();
    breaker.failed();
    breaker.succeeded(); // the count is of failures in a row
    breaker.failed();
    breaker.failed();
    expect(breaker.admits()).to.equal(true);
    breaker.failed();
    expect(breaker.state).to.equal('open');
    expect(breaker.admits()).to.equal(false);
    clock.now = 1000;
    expect(breaker.state).to.equal('half_open');
    expect(breaker.admits()).to.equal(true); // the probe
    expect(breaker.admits()).to.equal(false); // one at a time
    breaker.succeeded();
    expect(breaker.state).to.equal('closed');
    expect(breaker.admits()).to.equal(true);
  });

  it('opens again when the probe fails, and lets another probe go after an inconclusive one', () => {
    const clock = { now: 0 };
    const breaker = new CircuitBreaker(1, 500, () => clock.now);
    breaker.failed();
    clock.now = 500;
    expect(breaker.admits()).to.equal(true);
    breaker.failed();
    expect(breaker.state).to.equal('open');
    clock.now = 1000;
    expect(breaker.admits()).to.equal(true);
    breaker.inconclusive();
    expect(breaker.admits()).to.equal(true);
  });
});
