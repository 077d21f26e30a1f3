import { expect } from 'chai';
import { AUDIT_TEXT_LIMITS, auditEventSchema, TRUNCATABLE_FIELDS, type TruncatableField } from '../../common/audit-event.js';
import { cutToCodePoints, fitToLimits } from '../../gateway/audit/field-limits.js';
import { auditEvent } from '../helpers/audit-events.js';

const EMOJI = '\u{1F600}'; // one code point, two UTF-16 units

/** An event whose `field` holds `value` (rate_limit.limit inside rate_limit). */
function withField(field: TruncatableField, value: string) {
  const event = auditEvent();
  if (field === 'rate_limit.limit') event.rate_limit = { limit: value, window: 'second', max: 1, remaining: 0, reset_s: 1 };
  else event[field] = value;
  return event;
}

describe('audit field limits', () => {
  it('are the limits the event schema holds each text field to', () => {
    for (const field of TRUNCATABLE_FIELDS) {
      const limit = AUDIT_TEXT_LIMITS[field];
      expect(auditEventSchema.safeParse(withField(field, 'x'.repeat(limit))).success, `${field} at ${limit}`).to.equal(true);
      expect(auditEventSchema.safeParse(withField(field, 'x'.repeat(limit + 1))).success, `${field} at ${limit + 1}`).to.equal(false);
    }
  });

  it('cut a text to a number of code points, never inside a surrogate pair', () => {
    expect(cutToCodePoints('abcdef', 4)).to.equal('abcd');
    expect(cutToCodePoints('abcd', 4)).to.equal('abcd');
    expect(cutToCodePoints(`abc${EMOJI}d`, 4)).to.equal(`abc${EMOJI}`);
    expect(cutToCodePoints(`${EMOJI.repeat(4)}`, 4)).to.equal(EMOJI.repeat(4));
    expect(cutToCodePoints(`${EMOJI.repeat(5)}`, 4)).to.equal(EMOJI.repeat(4));
    expect(cutToCodePoints(`ab\uD800cde`, 4)).to.equal('ab\uD800c'); // a lone surrogate counts as one
  });

  it('leave an event that fits as it is, with nothing truncated', () => {
    const event = auditEvent({ truncated: ['path'] });
    const copy = structuredClone(event);
    expect(fitToLimits(event)).to.deep.equal({ ...copy, truncated: [] });
  });

  it('cut every over-long field of an event to its limit and list each one, so the schema accepts it', () => {
    const all = auditEvent({ rate_limit: { limit: EMOJI.repeat(AUDIT_TEXT_LIMITS['rate_limit.limit'] + 3), window: 'second', max: 1, remaining: 0, reset_s: 1 } });
    for (const field of TRUNCATABLE_FIELDS) if (field !== 'rate_limit.limit') all[field] = EMOJI.repeat(AUDIT_TEXT_LIMITS[field] + 3);
    const fitted = fitToLimits(all);
    expect(fitted.truncated).to.have.members(TRUNCATABLE_FIELDS);
    expect(fitted.path).to.equal(EMOJI.repeat(AUDIT_TEXT_LIMITS.path));
    expect(fitted.rate_limit?.limit).to.equal(EMOJI.repeat(AUDIT_TEXT_LIMITS['rate_limit.limit']));
    expect(auditEventSchema.safeParse(fitted).success).to.equal(true);
  });
});
