/**
 * `admin keys rotate|list`: the sidecar's signing keys (common/signing-keys.ts). A rotation makes
 * a new key (token_issuing.algorithm) current; every sidecar signs with it within 5 s, and the
 * old key keeps verifying, and stays in the JWKS, until its last token has expired. Keys retired
 * longer ago than that are deleted by the next rotation.
 */
import { ownIssuerOf, type GatewayConfig } from '../../common/config/schema.js';
import { MIN_SIGNING_SECRET_CHARS, publishedUntil, SigningKeyStore } from '../../common/signing-keys.js';
import type { BansRun } from './bans.js';
import { UsageError, type Options } from './usage.js';

export function keysCommand(action: string | undefined, args: string[], options: Options, config: () => GatewayConfig, env: NodeJS.ProcessEnv): BansRun {
  const own = ownIssuerOf(config());
  if (!own) throw new UsageError('the config has no token_issuing (and no issuer with sidecar_keys): there are no signing keys');
  if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
  const lifetimeMs = (own.issuing.access_token_ttl + own.issuer.clock_skew_seconds) * 1000;
  if (action === 'list') {
    return async (redis, keys) => {
      const set = await new SigningKeyStore(redis, keys).read();
      const rows = set.keys.map((k) => {
        const until = publishedUntil(k, own.issuing.access_token_ttl, own.issuer.clock_skew_seconds);
        return {
          kid: k.record.kid,
          alg: k.record.alg,
          created: new Date(k.record.created_at).toISOString(),
          state: k.record.kid === set.current ? 'current' : until > Date.now() ? 'retired, still verifying' : 'expired',
          retired: k.retiredAt === undefined ? null : new Date(k.retiredAt).toISOString(),
          verifies_until: Number.isFinite(until) ? new Date(until).toISOString() : null,
        };
      });
      if (options.json) return void console.log(JSON.stringify(rows));
      if (rows.length === 0) return void console.log('no signing keys yet: the first sidecar to start makes one');
      for (const r of rows) console.log(`${r.kid}\t${r.alg}\t${r.state}\tcreated=${r.created}${r.verifies_until ? `\tverifies until ${r.verifies_until}` : ''}`);
    };
  }
  if (action !== 'rotate') throw new UsageError(`unknown keys command ${action ?? '(none)'}: use keys rotate or keys list`);
  const secret = env.SIGNING_KEY_SECRET;
  if (!secret || secret.length < MIN_SIGNING_SECRET_CHARS) throw new UsageError(`keys rotate needs SIGNING_KEY_SECRET (at least ${MIN_SIGNING_SECRET_CHARS} characters), the sidecars' own`);
  return async (redis, keys) => {
    const store = new SigningKeyStore(redis, keys);
    const now = Date.now();
    const { kid, retired } = await store.rotate(own.issuing.algorithm, secret, now);
    const purged = await store.purgeRetiredBefore(now - lifetimeMs);
    console.log(`signing key ${kid} (${own.issuing.algorithm}) is current; every sidecar signs with it within 5 s`);
    if (retired) console.log(`key ${retired} retired: it verifies its tokens until ${new Date(now + lifetimeMs).toISOString()}`);
    if (purged.length > 0) console.log(`deleted expired key${purged.length === 1 ? '' : 's'} ${purged.join(', ')}`);
  };
}
