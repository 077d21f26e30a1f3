/** The alert webhook without a network: its config keys, the secret check, the signature and the backoff. */
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import { backoffDelay, webhookDeliveryOptions } from '../../audit-worker/anomaly/webhook-delivery.js';
import { signWebhook, verifyWebhookSignature } from '../../audit-worker/anomaly/webhook-signature.js';

const ROUTES = 'routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\n';
const SECRET = 'a-webhook-secret-of-at-least-32-bytes';

function webhook(yaml: string) {
  return parseConfig(`${ROUTES}anomaly:\n  webhook: ${yaml}\n`, 'gw.yml', {}).anomaly.webhook;
}

function problems(yaml: string): string[] {
  try {
    webhook(yaml);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return expect.fail('expected the config to be refused');
}

describe('anomaly.webhook config', () => {
  it('is off by default, with the documented defaults', () => {
    expect(parseConfig(ROUTES, 'gw.yml', {}).anomaly.webhook).to.deep.equal({ timeout: 5, max_attempts: 10, backoff: { base: 1, cap: 300 } });
  });

  it('takes a url, the secret variable, durations and a partial backoff', () => {
    expect(webhook('{ url: "https://hooks.example/alerts?team=sec", secret_env: HOOK_SECRET, timeout: 2s, max_attempts: 3, backoff: { cap: 1m } }')).to.deep.equal({
      url: 'https://hooks.example/alerts?team=sec',
      secret_env: 'HOOK_SECRET',
      timeout: 2,
      max_attempts: 3,
      backoff: { base: 1, cap: 60 },
    });
  });

  it('refuses a url without secret_env, other schemes, credentials in the url and bad values, naming each key', () => {
    expect(problems('{ url: "http://127.0.0.1:9/h" }')).to.deep.equal(['anomaly.webhook.secret_env: required when url is set']);
    expect(problems('{ url: "ftp://hooks.example/h", secret_env: S }')).to.deep.equal(['anomaly.webhook.url: must be an http:// or https:// URL']);
    expect(problems('{ url: "https://user:pw@hooks.example/h", secret_env: S }')).to.deep.equal(['anomaly.webhook.url: must not carry credentials (user:password@)']);
    expect(problems('{ url: "https://hooks.example/h", secret_env: my-secret, timeout: 10m, max_attempts: 0, backoff: { base: 0 }, retries: 3 }')).to.have.members([
      'anomaly.webhook: Unrecognized key: "retries"',
      'anomaly.webhook.secret_env: must be an environment variable name',
      'anomaly.webhook.timeout: must be at most 5m',
      'anomaly.webhook.max_attempts: Too small: expected number to be >=1',
      'anomaly.webhook.backoff.base: Too small: expected number to be >0',
    ]);
  });

  it('reads the secret from its variable, refusing one unset or shorter than 32 bytes; no url: no delivery', () => {
    const config = webhook('{ url: "https://hooks.example/h", secret_env: HOOK_SECRET, timeout: 3s }');
    expect(webhookDeliveryOptions(config, { HOOK_SECRET: SECRET })).to.deep.equal({
      url: 'https://hooks.example/h', secret: SECRET, timeoutMs: 3000, maxAttempts: 10, backoffBaseMs: 1000, backoffCapMs: 300_000,
    });
    expect(() => webhookDeliveryOptions(config, {})).to.throw('anomaly.webhook.secret_env: environment variable HOOK_SECRET is not set');
    expect(() => webhookDeliveryOptions(config, { HOOK_SECRET: 'x'.repeat(31) })).to.throw('anomaly.webhook.secret_env: HOOK_SECRET must hold at least 32 bytes');
    expect(webhookDeliveryOptions(webhook('{}'), {})).to.equal(undefined);
  });
});

describe('alert webhook signature', () => {
  const body = '{"delivery_id":"d","state":"opened","alert":{"id":"a"}}';
  const t = 1_790_000_000;

  it('is t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">, which verifies within the tolerance', () => {
    const header = signWebhook(SECRET, body, t);
    expect(header).to.match(/^t=1790000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, header, body, 300, t + 300)).to.equal(true);
    expect(verifyWebhookSignature(SECRET, header, Buffer.from(body), 300, t - 10)).to.equal(true);
  });

  it('refuses a wrong secret, a changed body, a changed time, a stale or future time, and malformed headers', () => {
    const header = signWebhook(SECRET, body, t);
    expect(verifyWebhookSignature(`${SECRET}!`, header, body, 300, t)).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, body.replace('opened', 'acked'), 300, t)).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header.replace(`t=${t}`, `t=${t + 1}`), body, 300, t)).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, body, 300, t + 301)).to.equal(false);
    expect(verifyWebhookSignature(SECRET, header, body, 300, t - 301)).to.equal(false);
    for (const bad of [undefined, '', `t=${t}`, header.replace('v1=', 'v0='), header.slice(0, -2), `v1=${header.split('v1=')[1]}`]) {
      expect(verifyWebhookSignature(SECRET, bad, body, 300, t), String(bad)).to.equal(false);
    }
  });

  it('accepts a header carrying a second, valid v1 (a sender rotating its secret)', () => {
    const old = signWebhook('an-old-secret-of-at-least-32-bytes!!', body, t).split(',')[1];
    expect(verifyWebhookSignature(SECRET, `${signWebhook(SECRET, body, t)},${old}`, body, 300, t)).to.equal(true);
    expect(verifyWebhookSignature(SECRET, `t=${t},${old}`, body, 300, t)).to.equal(false);
  });
});

describe('alert webhook backoff', () => {
  it('doubles from base up to cap, each wait between half and all of it', () => {
    const low = [1, 2, 3, 4, 10, 11, 60].map((n) => backoffDelay(n, 1000, 300_000, () => 0));
    const high = [1, 2, 3, 4, 10, 11, 60].map((n) => backoffDelay(n, 1000, 300_000, () => 1));
    expect(low).to.deep.equal([500, 1000, 2000, 4000, 150_000, 150_000, 150_000]);
    expect(high).to.deep.equal([1000, 2000, 4000, 8000, 300_000, 300_000, 300_000]);
    expect(backoffDelay(3, 1000, 300_000, () => 0.5)).to.equal(3000);
  });
});
