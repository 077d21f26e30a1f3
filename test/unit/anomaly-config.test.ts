/** `anomaly` in the config file: defaults, partial rules, durations, and each bad key named. */
import { expect } from 'chai';
import { parseConfig } from '../../common/config/load.js';
import { ConfigError } from '../../common/config/load.js';
import { banTtl } from '../../audit-worker/anomaly/rule-ban.js';

const ROUTES = 'routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\n';

function anomaly(yaml: string) {
  return parseConfig(`${ROUTES}anomaly:\n${yaml}`, 'gw.yml', {}).anomaly;
}

function problems(yaml: string): string[] {
  try {
    anomaly(yaml);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return expect.fail('expected the config to be refused');
}

describe('anomaly config', () => {
  it('keeps the defaults of the keys a rule does not set, and parses durations to seconds', () => {
    const config = anomaly('  rules:\n    auth_failure_burst: { threshold: 5, window: 2m, ban_ttl: 1h, shadow: true }\n  cooldown: 15m\n');
    expect(config.rules.auth_failure_burst).to.deep.equal({ enabled: true, threshold: 5, window: 120, severity: 'medium', action: 'ban', ban_ttl: 3600, shadow: true });
    expect(config.rules.revoked_token_use).to.include({ enabled: true, threshold: 1, severity: 'high', action: 'alert' });
    expect(config.cooldown).to.equal(900);
  });

  it('gives each new rule its own defaults, and volume_spike its factor and baseline', () => {
    const config = anomaly('  rules:\n    volume_spike: { factor: 5, baseline: 10m }\n');
    expect(config.rules.token_many_ips).to.deep.include({ threshold: 10, window: 600, severity: 'high', action: 'ban', ban_ttl: 86400 });
    expect(config.rules.rate_limit_storm).to.deep.include({ threshold: 100, window: 60, action: 'alert', ban_ttl: 600 });
    expect(config.rules.volume_spike).to.deep.equal({ enabled: true, threshold: 1000, window: 60, severity: 'medium', action: 'alert', ban_ttl: 600, shadow: false, factor: 5, baseline: 600 });
    expect(problems('  rules:\n    volume_spike: { factor: 0.5 }\n')).to.deep.equal(['anomaly.rules.volume_spike.factor: Too small: expected number to be >=1']);
  });

  it('accepts IPv4 and IPv6 addresses and ranges in the allow-list', () => {
    const config = anomaly('  allow_list: { ips: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"], consumers: ["svc:batch"] }\n');
    expect(config.allow_list).to.deep.equal({ ips: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'], consumers: ['svc:batch'] });
  });

  it('refuses an unknown rule and an unknown key of a rule, naming them', () => {
    expect(problems('  rules:\n    refresh_reuse: { enabled: true }\n')).to.deep.equal(['anomaly.rules: Unrecognized key: "refresh_reuse"']);
    expect(problems('  rules:\n    auth_failure_burst: { factor: 3 }\n')).to.deep.equal(['anomaly.rules.auth_failure_burst: Unrecognized key: "factor"']);
    expect(problems('  rules:\n    auth_failure_burst: { limit: 3 }\n')).to.deep.equal(['anomaly.rules.auth_failure_burst: Unrecognized key: "limit"']);
  });

  it('refuses a bad severity, action, window and threshold, naming each', () => {
    expect(problems('  rules:\n    revoked_token_use: { severity: urgent, action: block, window: 5x, threshold: 0 }\n')).to.have.members([
      'anomaly.rules.revoked_token_use.threshold: Too small: expected number to be >=1',
      'anomaly.rules.revoked_token_use.window: must be seconds or a duration like 90s, 15m, 24h, 7d',
      'anomaly.rules.revoked_token_use.severity: Invalid option: expected one of "low"|"medium"|"high"|"critical"',
      'anomaly.rules.revoked_token_use.action: Invalid option: expected one of "alert"|"ban"',
    ]);
  });

  it('refuses an allow-list entry that is not an address or range', () => {
    expect(problems('  allow_list: { ips: [10.0.0.0/33, example.com, "::1/129"] }\n')).to.deep.equal([
      'anomaly.allow_list.ips.0: must be an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32',
      'anomaly.allow_list.ips.1: must be an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32',
      'anomaly.allow_list.ips.2: must be an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32',
    ]);
  });

  it('escalates the ban ttl by the factor per offence, up to max_ttl', () => {
    const ban = { factor: 4, max_ttl: 86400, memory: 86400 };
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((offence) => banTtl(600, offence, ban))).to.deep.equal([600, 2400, 9600, 38400, 86400, 86400, 86400, 86400]);
  });
});
