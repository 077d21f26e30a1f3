import { expect } from 'chai';
import { EventFilterError } from '../../audit-worker/event-filter.js';
import { adminQueryEvent, apiTokenActor } from '../../audit-worker/investigation/admin-query-audit.js';
import { parseAfterRevocationQuery, parseExportQuery, parseTimelineQuery, parseTopQuery } from '../../audit-worker/investigation/params.js';
import { bars } from '../../cli/audit/views.js';

const NOW = Date.parse('2026-03-04T05:06:07.000Z');
const clock = () => NOW;
const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(EventFilterError);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('investigation parameters', () => {
  it('reads a timeline with a default 1m bucket and until now', () => {
    expect(parseTimelineQuery({ since: '1h', sub: 'alice' }, clock)).to.deep.equal({ since: '2026-03-04T04:06:07.000Z', until: '2026-03-04T05:06:07.000Z', bucket: 60, sub: 'alice' });
    expect(parseTimelineQuery({ since: '1d', bucket: '15m' }, clock).bucket).to.equal(900);
  });

  it('refuses each bad parameter by name', () => {
    expect(errorOf(() => parseTimelineQuery({}, clock))).to.match(/^since: /);
    expect(errorOf(() => parseTimelineQuery({ since: '1h', bucket: '0s' }, clock))).to.equal('bucket: must be a duration from 1s to 366d, such as 30s, 1m, 1h, 1d');
    expect(errorOf(() => parseTimelineQuery({ since: '30d', bucket: '1m' }, clock))).to.equal('bucket: too small for the range: 43200 buckets (at most 10000)');
    expect(errorOf(() => parseTimelineQuery({ since: '1h', client: 'x' }, clock))).to.equal('unknown parameter: client');
    expect(errorOf(() => parseTopQuery({ since: '1h' }, clock))).to.match(/^by: /);
    expect(errorOf(() => parseTopQuery({ by: 'ip', since: '1h', decision: 'maybe' }, clock))).to.match(/^decision: /);
    expect(errorOf(() => parseTopQuery({ by: 'ip', since: '1h', limit: '0' }, clock))).to.match(/^limit: /);
    expect(errorOf(() => parseTopQuery({ by: 'ip', since: '1h', until: '2h' }, clock))).to.equal('since: must not be after until');
    expect(errorOf(() => parseAfterRevocationQuery({}))).to.equal('jti: give exactly one of jti, sub, consumer');
    expect(errorOf(() => parseExportQuery({ since: '1h', kind: 'audit' }, clock))).to.match(/^kind: /);
  });
});

describe('admin query audit', () => {
  const token = 'a-very-secret-admin-token-xyz';

  it('names a short hash of the token, and scrubs the token and any JWT from subject and reason', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
    const event = adminQueryEvent(token, { method: 'GET', path: `/v1/trace/${token}`, query: `sub=${token}&jti=${jwt}%0Aforged` }, clock);
    expect(event).to.include({ kind: 'admin_query', actor: apiTokenActor(token), subject_kind: 'route', subject: 'GET /v1/trace/[admin-token]', reason: 'sub=[admin-token]&jti=[token]?forged', ts: '2026-03-04T05:06:07.000Z' });
    expect(apiTokenActor(token)).to.match(/^api-token:[0-9a-f]{12}$/);
  });

  it('records a call without parameters, and cuts a long query to 500 characters', () => {
    expect(adminQueryEvent(token, { method: 'GET', path: '/v1/alerts', query: '' }).reason).to.equal('(no parameters)');
    expect(adminQueryEvent(token, { method: 'GET', path: '/v1/events', query: `sub=${'x'.repeat(900)}` }).reason).to.have.length(500);
  });
});

describe('timeline bars', () => {
  it('draws a bar per bucket scaled to the largest, denied before allowed, with the top deny reasons', () => {
    const drawn = bars(
      [
        { start: 'A', allow: 10, deny: 30, counts: [{ decision: 'deny', reason: 'token_revoked', count: 30 }, { decision: 'allow', reason: null, count: 10 }] },
        { start: 'B', allow: 0, deny: 0, counts: [] },
        { start: 'C', allow: 1, deny: 0, counts: [{ decision: 'allow', reason: null, count: 1 }] },
      ],
      8,
    ).split('\n');
    expect(drawn).to.deep.equal([
      '█ deny  ░ allow',
      'A  ██████░░      10 allow     30 deny  token_revoked 30',
      'B                 0 allow      0 deny',
      'C  ░              1 allow      0 deny',
    ]);
  });
});
