import { expect } from 'chai';
import { EventFilterError, parseEventFilter } from '../../audit-worker/event-filter.js';
import { encodeCursor } from '../../audit-worker/store/cursor.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const clock = () => NOW;
const parse = (input: Record<string, unknown>) => parseEventFilter(input, clock);
const errorOf = (input: Record<string, unknown>): string => {
  try {
    parse(input);
  } catch (err) {
    expect(err).to.be.instanceOf(EventFilterError);
    return (err as Error).message;
  }
  expect.fail('expected the filter to be refused');
};

describe('event filter', () => {
  it('defaults the limit to 100 and filters nothing', () => {
    expect(parse({})).to.deep.equal({ limit: 100 });
  });

  it('reads relative since and until as durations before the injected clock', () => {
    expect(parse({ since: '30s' }).since).to.equal('2025-06-01T11:59:30.000Z');
    expect(parse({ since: '15m' }).since).to.equal('2025-06-01T11:45:00.000Z');
    expect(parse({ since: '1h' }).since).to.equal('2025-06-01T11:00:00.000Z');
    expect(parse({ until: '7d' }).until).to.equal('2025-05-25T12:00:00.000Z');
  });

  it('accepts ISO timestamps with an offset as they are', () => {
    const f = parse({ since: '2025-05-01T00:00:00Z', until: '2025-05-02T00:00:00.5+02:00' });
    expect(f.since).to.equal('2025-05-01T00:00:00Z');
    expect(f.until).to.equal('2025-05-02T00:00:00.5+02:00');
  });

  it('refuses a time that is neither ISO nor a duration, naming the parameter', () => {
    expect(errorOf({ since: 'yesterday' })).to.match(/^since: /);
    expect(errorOf({ until: '5w' })).to.match(/^until: /);
  });

  it('refuses a relative time too far back for a date, naming the parameter', () => {
    expect(errorOf({ since: '999999999d' })).to.match(/^since: must be between 0001-01-01 and 9999-12-31/);
    expect(errorOf({ until: '999999999h' })).to.match(/^until: must be between 0001-01-01 and 9999-12-31/);
    // Still a valid JavaScript date, but before year 1: PostgreSQL cannot read it.
    expect(errorOf({ since: '999999d' })).to.match(/^since: must be between/);
    expect(parse({ since: '730000d' }).since).to.equal('0026-09-29T12:00:00.000Z');
  });

  it('refuses an ISO time outside years 0001-9999, naming the parameter', () => {
    expect(errorOf({ since: '0000-12-31T23:59:59Z' })).to.match(/^since: must be between/);
    expect(errorOf({ until: '0001-01-01T00:30:00+01:00' })).to.match(/^until: must be between/);
    expect(parse({ since: '0001-01-01T00:00:00Z' }).since).to.equal('0001-01-01T00:00:00Z');
    expect(parse({ until: '9999-12-31T23:59:59.999Z' }).until).to.equal('9999-12-31T23:59:59.999Z');
    expect(errorOf({ until: '9999-12-31T23:59:59-01:00' })).to.match(/^until: must be between/);
  });

  it('refuses a time when the clock reads NaN instead of answering an invalid date', () => {
    expect(() => parseEventFilter({ since: '1h' }, () => Number.NaN)).to.throw(EventFilterError, /^since: must be between/);
  });

  it('refuses a cursor whose time is outside years 0001-9999', () => {
    const cursor = { ts: '0000-06-01T11:00:00.123456Z', event_id: '0b6f1f8e-8f0e-4c3b-9a43-6a3c0c1c2d3e' };
    expect(errorOf({ cursor: encodeCursor(cursor) })).to.match(/^cursor: /);
  });

  it('refuses since after until', () => {
    expect(errorOf({ since: '1h', until: '2h' })).to.match(/^since: must not be after until/);
  });

  it('keeps the limit between 1 and 1000', () => {
    expect(parse({ limit: '1' }).limit).to.equal(1);
    expect(parse({ limit: '1000' }).limit).to.equal(1000);
    expect(errorOf({ limit: '0' })).to.match(/^limit: /);
    expect(errorOf({ limit: '1001' })).to.match(/^limit: /);
    expect(errorOf({ limit: '2.5' })).to.match(/^limit: /);
    expect(errorOf({ limit: 'ten' })).to.match(/^limit: /);
  });

  it('refuses an unknown parameter by name', () => {
    expect(errorOf({ sub: 'alice', subject: 'alice' })).to.equal('unknown parameter: subject');
  });

  it('refuses a decision other than allow or deny', () => {
    expect(errorOf({ decision: 'maybe' })).to.match(/^decision: /);
    expect(parse({ decision: 'deny' }).decision).to.equal('deny');
  });

  it('refuses a repeated parameter and an empty value', () => {
    expect(errorOf({ sub: ['alice', 'bob'] })).to.match(/^sub: /);
    expect(errorOf({ sub: '' })).to.match(/^sub: must not be empty/);
  });

  it('decodes a cursor it issued and refuses a forged one', () => {
    const cursor = { ts: '2025-06-01T11:00:00.123456Z', event_id: '0b6f1f8e-8f0e-4c3b-9a43-6a3c0c1c2d3e' };
    expect(parse({ cursor: encodeCursor(cursor) }).cursor).to.deep.equal(cursor);
    expect(errorOf({ cursor: 'not-a-cursor' })).to.match(/^cursor: /);
    expect(errorOf({ cursor: Buffer.from('["x","y"]').toString('base64url') })).to.match(/^cursor: /);
  });
});
