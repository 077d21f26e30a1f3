/** `audit` in the config file: the store's retention and the chain sealer's settings, their defaults and each bad value named. */
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';

const ROUTES = 'routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\n';

const audit = (yaml: string) => parseConfig(`${ROUTES}${yaml}`, 'gw.yml', {}).audit;
const CHAIN_DEFAULTS = { bucket_s: 10, margin_s: 2, interval_s: 5, lag_alert_s: 120 };

function problems(yaml: string): string[] {
  try {
    audit(yaml);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return expect.fail('expected the config to be refused');
}

describe('audit config', () => {
  it('keeps 90 days of audit events when the section or the key is absent', () => {
    expect(audit('')).to.deep.equal({ retention_days: 90, chain: CHAIN_DEFAULTS });
    expect(audit('audit: {}\n')).to.deep.equal({ retention_days: 90, chain: CHAIN_DEFAULTS });
  });

  it('reads audit.retention_days', () => {
    expect(audit('audit: { retention_days: 1 }\n').retention_days).to.equal(1);
    expect(audit('audit: { retention_days: 400 }\n').retention_days).to.equal(400);
  });

  it('refuses a retention under one day, a fraction, a string or an unknown key, naming the key', () => {
    expect(problems('audit: { retention_days: 0 }\n')).to.deep.equal(['audit.retention_days: Too small: expected number to be >=1']);
    expect(problems('audit: { retention_days: 1.5 }\n')).to.deep.equal(['audit.retention_days: Invalid input: expected int, received number']);
    expect(problems('audit: { retention_days: 30d }\n')).to.deep.equal(['audit.retention_days: Invalid input: expected number, received string']);
    expect(problems('audit: { retention: 30 }\n')).to.deep.equal(['audit: Unrecognized key: "retention"']);
  });

  it('reads audit.chain, and refuses a lag alert a healthy chain would always raise', () => {
    expect(audit('audit: { chain: { bucket_s: 30, lag_alert_s: 600 } }\n').chain).to.deep.equal({ ...CHAIN_DEFAULTS, bucket_s: 30, lag_alert_s: 600 });
    expect(problems('audit: { chain: { bucket_s: 60, margin_s: 5, interval_s: 10, lag_alert_s: 75 } }\n')).to.deep.equal([
      'audit.chain.lag_alert_s: must be more than bucket_s + margin_s + interval_s (75): a healthy chain lags that much',
    ]);
    expect(problems('audit: { chain: { bucket_s: 0 } }\n')).to.deep.equal(['audit.chain.bucket_s: Too small: expected number to be >=1']);
    expect(problems('audit: { chain: { every: 5 } }\n')).to.deep.equal(['audit.chain: Unrecognized key: "every"']);
  });
});
