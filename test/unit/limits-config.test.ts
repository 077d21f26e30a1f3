/** Rate-limit policy in the config: `by`, cost, shadow, count_refused, headers, refusal, overrides; what the schema refuses, naming the key. */
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import { limitOverrideSchema } from '../../common/config/schema.js';

const ISSUER = '{ name: local, iss: x, algorithms: [HS256], secret_env: S }';
const route = (limit: string) => `{ name: r, paths: [/r], upstream: "http://127.0.0.1:1", rate_limit: ${limit} }`;
const yaml = (limit: string, more = '') => `issuers: [${ISSUER}]\n${more}\nroutes: [${route(limit)}]`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}
const limitOf = (limit: string, more = '') => parseConfig(yaml(limit, more), 'test.yml', {}).routes[0]!.rate_limit!;

describe('rate-limit policy config', () => {
  it('parses by into its parts in a fixed order, each once, lower-case', () => {
    expect(limitOf('{ by: ip+CONSUMER, hour: 1 }').by).to.deep.equal(['consumer', 'ip']);
    expect(limitOf('{ by: "route+header:X-Tenant+credential", hour: 1 }').by).to.deep.equal(['credential', 'header:x-tenant', 'route']);
    expect(limitOf('{ by: consumer+consumer, hour: 1 }').by).to.deep.equal(['consumer']);
    expect(limitOf('{ hour: 1 }').by).to.deep.equal(['consumer']);
  });

  it('refuses an unknown by part, an empty one and two headers', () => {
    const error = 'routes.0.rate_limit.by: must be consumer, credential, ip, route or header:<name>, or several joined with + (e.g. consumer+ip)';
    expect(problems(yaml('{ by: consumer+user, hour: 1 }'))).to.deep.equal([error]);
    expect(problems(yaml('{ by: "consumer+", hour: 1 }'))).to.deep.equal([error]);
    expect(problems(yaml('{ by: "header:a+header:b", hour: 1 }'))).to.deep.equal(['routes.0.rate_limit.by: at most one header:<name> in by']);
  });

  it('defaults cost 1, shadow and count_refused off, ietf headers, status 429', () => {
    const limit = limitOf('{ hour: 1 }');
    expect(limit).to.deep.include({ cost: 1, shadow: false, count_refused: false, headers: 'ietf', status: 429 });
    expect(limit.message).to.equal(undefined);
  });

  it('refuses a cost above a window of the route (it could never pass), a status outside 400-599 and a message with a control character', () => {
    expect(problems(yaml('{ hour: 4, cost: 5 }'))).to.deep.equal(["routes.0.rate_limit.cost: 5 exceeds the route's hour limit (4): no request could ever pass"]);
    // A tier too small for the route's cost is allowed: the route may be meant for larger tiers.
    expect(problems(yaml('{ hour: 100, cost: 5 }', 'tiers: { free: { second: 2 } }'))).to.deep.equal([]);
    expect(problems(yaml('{ hour: 1, status: 200 }'))).to.deep.equal(['routes.0.rate_limit.status: Too small: expected number to be >=400']);
    expect(problems(yaml('{ hour: 1, message: "a\\nb" }'))).to.deep.equal(['routes.0.rate_limit.message: must be 1-200 printable ASCII characters']);
    expect(problems(yaml('{ hour: 1, headers: all }'))[0]).to.match(/^routes\.0\.rate_limit\.headers: /);
  });

  it('takes shadow and count_refused on tiers too', () => {
    const config = parseConfig(yaml('{ hour: 1 }', 'tiers: { free: { hour: 5, shadow: true, count_refused: true } }'), 'test.yml', {});
    expect(config.tiers.free).to.deep.include({ shadow: true, count_refused: true });
  });

  it('takes overrides by consumer of a configured issuer: scale, or windows with an optional algorithm and burst', () => {
    const config = parseConfig(yaml('{ hour: 1 }', 'limit_overrides: { "local:acme": { scale: 10 }, "local:beta": { minute: 5, algorithm: gcra, burst: 2 } }'), 'test.yml', {});
    expect(config.limit_overrides).to.deep.equal({ 'local:acme': { scale: 10 }, 'local:beta': { minute: 5, algorithm: 'gcra', burst: 2 } });
    expect(problems(yaml('{ hour: 1 }', 'limit_overrides: { "other:acme": { scale: 10 } }'))).to.deep.equal(['limit_overrides.other:acme: must be <issuer>:<sub> with a configured issuer']);
  });

  it('refuses an override with scale and windows, with neither, scale with an algorithm, or burst without gcra', () => {
    const issues = (value: unknown) => (limitOverrideSchema.safeParse(value).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ scale: 2, hour: 5 })).to.deep.equal([': give scale, or windows (second, minute, hour, day), not both']);
    expect(issues({})).to.deep.equal([': give scale, or windows (second, minute, hour, day), not both']);
    expect(issues({ scale: 2, algorithm: 'gcra' })).to.deep.equal(["scale: scale keeps the tier's algorithm and scales its burst"]);
    expect(issues({ hour: 5, burst: 2 })).to.deep.equal(['burst: burst is for algorithm: gcra']);
    expect(issues({ hour: 5, rate: 2 })).to.have.length(1);
  });
});
