import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../common/config/load.js';
import type { GatewayConfig } from '../../common/config/schema.js';
import { EnvError, gatewayEnvSchema, readEnv, workerEnvSchema } from '../../common/env.js';
import { PROJECT_ROOT } from '../../common/paths.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/config');

const parseFixture = (name: string, env: NodeJS.ProcessEnv = {}): GatewayConfig =>
  parseConfig(readFileSync(join(FIXTURES, name), 'utf8'), name, env);

/** The problems of the ConfigError a fixture is refused with. */
const problemsOf = (name: string, env: NodeJS.ProcessEnv = {}): string[] => {
  try {
    parseFixture(name, env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).file).to.equal(name);
    return (err as ConfigError).problems;
  }
  expect.fail(`expected ${name} to be refused`);
};

const envProblemsOf = (run: () => unknown): string[] => {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(EnvError);
    return (err as EnvError).problems;
  }
  expect.fail('expected the environment to be refused');
};

/** Every object and array reachable from `value` that is not frozen, by path. */
function unfrozenPaths(value: unknown, path = '(root)'): string[] {
  if (value === null || typeof value !== 'object') return [];
  const own = Object.isFrozen(value) ? [] : [path];
  return own.concat(Object.entries(value).flatMap(([k, v]) => unfrozenPaths(v, `${path}.${k}`)));
}

describe('config', () => {
  describe('parseConfig', () => {
    it('parses a full config, keeping set values and filling defaults', () => {
      const config = parseFixture('valid.yml');
      expect(config).to.deep.equal({
        issuers: [
          {
            name: 'local',
            iss: 'https://auth.example.test',
            audience: ['api', 'admin-api'],
            algorithms: ['HS256', 'HS512'],
            secret_env: 'LOCAL_JWT_SECRET',
            clock_skew_seconds: 10,
            max_lifetime: 3600,
            groups_claim: 'groups',
            tier_claim: 'tier',
            scopes_claim: 'scope',
          },
          {
            name: 'partner',
            iss: 'partner-issuer',
            algorithms: ['RS256'],
            public_key_file: 'keys/partner.pem',
            clock_skew_seconds: 30,
            max_lifetime: 86400,
            groups_claim: 'roles',
            tier_claim: 'plan',
            scopes_claim: 'scope',
          },
        ],
        tiers: {
          anonymous: { minute: 30, algorithm: 'fixed', shadow: false, count_refused: false },
          free: { second: 5, minute: 100, algorithm: 'fixed', shadow: false, count_refused: false },
          premium: { second: 50, minute: 1000, hour: 20000, day: 100000, algorithm: 'fixed', shadow: false, count_refused: false },
        },
        default_tiers: { authenticated: 'free', anonymous: 'anonymous' },
        limit_overrides: {},
        upstreams: [],
        tracing: { sample_ratio: 1 },
        routes: [
          {
            name: 'users',
            paths: ['/users', '/people/'],
            upstream: 'http://127.0.0.1:3001',
            strip_path: false,
            preserve_host: false,
            websocket: false,
            auth: { mode: 'required', required_scopes: [], token: {} },
            acl: { allow: ['admins', 'customers'] },
            rate_limit: { by: ['consumer'], minute: 60, algorithm: 'fixed', shadow: false, count_refused: false, cost: 1, headers: 'ietf', status: 429 },
            upstream_timeout_ms: 30000,
            allow_encoded_slashes: false,
            allow_underscore_headers: false,
            max_body_bytes: 1048576,
          },
          {
            name: 'status',
            paths: ['/status'],
            upstream: 'https://status.example.test/base',
            strip_path: false,
            preserve_host: false,
            websocket: false,
            auth: { mode: 'none', required_scopes: [], token: {} },
            rate_limit: { by: ['header:x-api-key'], fail_open: true, algorithm: 'fixed', shadow: false, count_refused: false, cost: 1, headers: 'ietf', status: 429 },
            upstream_timeout_ms: 5000,
            allow_encoded_slashes: false,
            allow_underscore_headers: false,
            max_body_bytes: 0,
          },
        ],
        gateway: {
          check_deadline_ms: 150,
          audit_batch_size: 100,
          audit_flush_ms: 20,
          audit_spool_max_mb: 64,
          headers_timeout_ms: 10_000,
          request_timeout_ms: 60_000,
          keep_alive_timeout_ms: 15_000,
          connections_check_ms: 1_000,
          allowed_hosts: ['api.example.test', '[::1]:8443'],
          trusted_proxies: [],
          forwarded_header: 'x-forwarded-for',
        },
        sidecar: { decision_timeout_ms: 100, redis_breaker: { failures: 5, open_ms: 2000 } },
        anomaly: {
          rules: {
            auth_failure_burst: { enabled: true, threshold: 30, window: 60, severity: 'medium', action: 'ban', ban_ttl: 600, shadow: false },
            revoked_token_use: { enabled: true, threshold: 1, window: 60, severity: 'high', action: 'alert', ban_ttl: 600, shadow: false },
            token_many_ips: { enabled: true, threshold: 10, window: 600, severity: 'high', action: 'ban', ban_ttl: 86400, shadow: false },
            rate_limit_storm: { enabled: true, threshold: 100, window: 60, severity: 'medium', action: 'alert', ban_ttl: 600, shadow: false },
            volume_spike: { enabled: true, threshold: 1000, window: 60, severity: 'medium', action: 'alert', ban_ttl: 600, shadow: false, factor: 10, baseline: 1800 },
          },
          allow_list: { ips: [], consumers: [] },
          ban: { factor: 4, max_ttl: 7 * 86400, memory: 86400 },
          webhook: { timeout: 5, max_attempts: 10, backoff: { base: 1, cap: 300 } },
          cooldown: 600,
        },
        audit: { retention_days: 90, chain: { bucket_s: 10, margin_s: 2, interval_s: 5, lag_alert_s: 120 } },
      });
    });

    it('returns a deeply frozen config', () => {
      const config = parseFixture('valid.yml');
      expect(unfrozenPaths(config)).to.deep.equal([]);
      expect(() => {
        (config.routes[0]!.paths as string[]).push('/more');
      }).to.throw(TypeError);
    });

    it('rejects an unknown top-level key', () => {
      expect(problemsOf('unknown-top-key.yml')).to.deep.equal(['(root): Unrecognized key: "listen"']);
    });

    it('rejects an unknown key inside a route', () => {
      expect(problemsOf('unknown-route-key.yml')).to.deep.equal(['routes.0: Unrecognized key: "strip_prefix"']);
    });

    it('rejects a route without paths', () => {
      expect(problemsOf('route-without-paths.yml')).to.deep.equal(['routes.0.paths: Invalid input: expected array, received undefined']);
    });

    it('rejects an upstream that is not an http(s) URL', () => {
      expect(problemsOf('bad-upstream.yml')).to.deep.equal(['routes.0.upstream: must be an http:// or https:// URL']);
    });

    it('rejects an auth value outside required, optional, none', () => {
      expect(problemsOf('bad-auth.yml')).to.deep.equal(['routes.0.auth: must be required, optional, none, or { mode, required_scopes, token: { cookie, query } }']);
    });

    it('rejects two routes with the same name', () => {
      expect(problemsOf('duplicate-route-name.yml')).to.deep.equal(['routes.1.name: duplicate name "users"']);
    });

    it('rejects a path served by two routes, ignoring a trailing slash', () => {
      expect(problemsOf('duplicate-path.yml')).to.deep.equal(['routes.1.paths.1: path /users/ is already served by route users']);
    });

    it('refuses a path with empty, . or .. segments, which could never match a normalized path, and the reserved /__gateway', () => {
      expect(problemsOf('unnormalized-path.yml')).to.deep.equal([
        'routes.1.paths.0: must be normalized: no empty, . or .. segments',
        'routes.1.paths.1: must be normalized: no empty, . or .. segments',
        "routes.1.paths.2: is reserved for the gateway's own endpoints (/__gateway/)",
      ]);
    });

    it('rejects an issuer with both secret_env and public_key', () => {
      expect(problemsOf('issuer-two-key-sources.yml')).to.deep.equal([
        'issuers.0: exactly one of secret_env, public_key, public_key_file, jwk is required',
      ]);
    });

    it('rejects an HMAC algorithm on an issuer with a public key', () => {
      expect(problemsOf('issuer-hs256-public-key.yml')).to.deep.equal(['issuers.0.algorithms.1: HS256 needs secret_env, not a public key']);
    });

    it('rejects an issuer without an algorithm allow-list', () => {
      expect(problemsOf('issuer-without-algorithms.yml')).to.deep.equal([
        'issuers.0.algorithms: Invalid input: expected array, received undefined',
      ]);
    });

    it('rejects a max_lifetime that is no duration, zero or over a year, and reads seconds as given', () => {
      expect(problemsOf('bad-max-lifetime.yml')).to.deep.equal([
        'issuers.0.max_lifetime: must be seconds or a duration like 90s, 15m, 24h, 7d',
        'issuers.1.max_lifetime: Too small: expected number to be >0',
        'issuers.2.max_lifetime: must be at most 366d',
      ]);
    });

    it('rejects a rate_limit.by that is not consumer, credential, ip, route, header:<name> or a + of them', () => {
      expect(problemsOf('bad-rate-limit-by.yml')).to.deep.equal(['routes.0.rate_limit.by: must be consumer, credential, ip, route or header:<name>, or several joined with + (e.g. consumer+ip)']);
    });

    it('rejects an allowed_hosts entry that is not a host name or [ipv6] with an optional port', () => {
      expect(problemsOf('bad-allowed-host.yml')).to.deep.equal([
        'gateway.allowed_hosts.1: must be a host name or [ipv6], with an optional :port',
        'gateway.allowed_hosts.2: must be a host name or [ipv6], with an optional :port',
      ]);
    });

    it('rejects a tier without any window', () => {
      expect(problemsOf('tier-without-windows.yml')).to.deep.equal(['tiers.free: a tier needs at least one of second, minute, hour, day']);
    });

    it('rejects default tiers naming no configured tier (own keys only), naming the key', () => {
      expect(problemsOf('default-tier-undefined.yml')).to.deep.equal([
        'default_tiers.authenticated: tier "gold" is not defined in tiers',
        'default_tiers.anonymous: tier "constructor" is not defined in tiers',
      ]);
    });

    it('takes free and anonymous as default tiers only when tiers defines them', () => {
      expect(parseFixture('implicit-default-tiers.yml').default_tiers).to.deep.equal({ authenticated: 'free', anonymous: undefined });
    });

    it('rejects a decision timeout not shorter than the check deadline', () => {
      expect(problemsOf('decision-timeout-too-long.yml')).to.deep.equal([
        'sidecar.decision_timeout_ms: must be shorter than gateway.check_deadline_ms (100), so the sidecar answers before the gateway gives up',
      ]);
    });

    it('rejects a duplicate YAML key instead of keeping the last value', () => {
      expect(problemsOf('duplicate-yaml-key.yml')).to.deep.equal(['yaml: Map keys must be unique']);
    });

    it('rejects a YAML syntax error', () => {
      expect(problemsOf('yaml-syntax-error.yml')).to.deep.equal([
        'yaml: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ]);
    });

    it('expands ${VAR} from the environment and ${VAR:-default} to its default when unset', () => {
      const config = parseFixture('env-references.yml', { ORDERS_HOST: 'orders.internal' });
      expect(config.issuers[0]!.iss).to.equal('https://auth.example.test');
      expect(config.routes.map((r) => r.upstream)).to.deep.equal(['http://127.0.0.1:3001', 'http://orders.internal:3002']);
    });

    it('prefers a set variable over the default of ${VAR:-default}', () => {
      const config = parseFixture('env-references.yml', { ORDERS_HOST: 'orders.internal', USERS_UPSTREAM: 'https://users.internal:8443' });
      expect(config.routes[0]!.upstream).to.equal('https://users.internal:8443');
    });

    it('names the path of a ${VAR} that is unset and has no default', () => {
      expect(problemsOf('env-references.yml', {})).to.deep.equal([
        'routes.1.upstream: environment variable ORDERS_HOST is not set and has no default',
      ]);
    });

    it('refuses a request timeout shorter than the headers timeout, naming the key', () => {
      const yaml = 'routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\ngateway: { headers_timeout_ms: 5000, request_timeout_ms: 1000 }\n';
      expect(() => parseConfig(yaml, 'gw.yml', {})).to.throw(ConfigError, 'gateway.request_timeout_ms: request_timeout_ms must be at least headers_timeout_ms');
    });

    it('puts the file name and every problem in the error message', () => {
      expect(() => parseConfig('routes: []\nlisten: 1\n', 'gw.yml', {})).to.throw(
        ConfigError,
        'invalid config gw.yml:\n  - routes: Too small: expected array to have >=1 items\n  - (root): Unrecognized key: "listen"',
      );
    });
  });

  describe('readEnv', () => {
    it('names GATEWAY_PORT when it is not a number', () => {
      expect(envProblemsOf(() => readEnv(gatewayEnvSchema, { GATEWAY_PORT: 'eighty' }))).to.deep.equal([
        'GATEWAY_PORT: Invalid input: expected number, received NaN',
      ]);
    });

    it('names GATEWAY_PORT when it is out of range', () => {
      expect(envProblemsOf(() => readEnv(gatewayEnvSchema, { GATEWAY_PORT: '70000' }))).to.deep.equal([
        'GATEWAY_PORT: Too big: expected number to be <=65535',
      ]);
    });

    it('reads a valid GATEWAY_PORT as a number and treats an empty variable as unset', () => {
      expect(readEnv(gatewayEnvSchema, { GATEWAY_PORT: '8081' }).GATEWAY_PORT).to.equal(8081);
      expect(readEnv(gatewayEnvSchema, { GATEWAY_PORT: '' }).GATEWAY_PORT).to.equal(8080);
    });

    it('requires ADMIN_TOKEN for the worker when NODE_ENV is production', () => {
      expect(envProblemsOf(() => readEnv(workerEnvSchema, { NODE_ENV: 'production' }))).to.deep.equal([
        'ADMIN_TOKEN: required when NODE_ENV is production',
      ]);
    });

    it('does not require ADMIN_TOKEN for the worker outside production', () => {
      expect(readEnv(workerEnvSchema, { NODE_ENV: 'development' }).ADMIN_TOKEN).to.equal(undefined);
    });

    it('accepts the worker in production with a 16-character ADMIN_TOKEN', () => {
      const env = readEnv(workerEnvSchema, { NODE_ENV: 'production', ADMIN_TOKEN: '0123456789abcdef' });
      expect(env.ADMIN_TOKEN).to.equal('0123456789abcdef');
      expect(Object.isFrozen(env)).to.equal(true);
    });
  });
});
