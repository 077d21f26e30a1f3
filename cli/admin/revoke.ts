/**
 * `admin revoke --token JWT | --jti ID [--ttl 1d] | --consumer ISSUER:SUB | --kid KID [--ttl 1d] [--reason TEXT]`,
 * audited as a `revoke` security event (the jti, never the token, is its subject).
 */
import jwt from 'jsonwebtoken';
import type { GatewayConfig } from '../../common/config/schema.js';
import { adminCliActor } from '../../common/security-event.js';
import { revokeConsumer, revokeJti, revokeKid } from '../../common/security-state.js';
import { SigningKeyStore } from '../../common/signing-keys.js';
import { prepare, publishOrFail } from './audited.js';
import type { BansRun } from './bans.js';
import { consumerOf, duration, jtiOf, reasonOf, UsageError, type Options } from './usage.js';

/** The reason recorded when --reason is not given (revoke did not take one before it was audited). */
export const DEFAULT_REVOKE_REASON = 'manual revocation';

export function revokeCommand(options: Options, config: () => GatewayConfig): BansRun {
  const given = (['token', 'jti', 'consumer', 'kid'] as const).filter((flag) => options[flag] !== undefined);
  if (given.length !== 1) throw new UsageError('revoke needs exactly one of --token, --jti, --consumer, --kid');
  const reason = reasonOf(options, 'revoke', DEFAULT_REVOKE_REASON);
  const actor = adminCliActor();
  if (options.kid !== undefined) return revokeKidCommand(jtiOf(options.kid, '--kid'), options, reason, actor);
  if (options.consumer !== undefined) {
    if (options.ttl !== undefined) throw new UsageError('revoke --consumer does not take --ttl (it revokes the tokens issued so far, whatever their exp)');
    const consumer = consumerOf(options.consumer, config());
    const event = prepare({ kind: 'revoke', actor, target: { consumer }, reason });
    return async (redis, keys) => {
      const second = await revokeConsumer(redis, keys, consumer);
      const done = `revoked every token of ${consumer} issued until now (iat <= ${second})`;
      await publishOrFail(redis, keys, event, done);
      console.log(`${done} (audited as ${event.event_id})`);
    };
  }
  let jti = options.jti;
  let exp = Date.now() / 1000 + duration(options.ttl ?? '1d');
  if (options.token !== undefined) {
    const payload = jwt.decode(options.token, { json: true });
    if (!payload || typeof payload.jti !== 'string') throw new UsageError('--token is not a JWT with a jti');
    jti = payload.jti;
    if (typeof payload.exp === 'number') exp = payload.exp;
  }
  const id = jtiOf(jti ?? '', '--jti');
  // The revocation key lives as long as the token could: the same ttl revokeJti() writes.
  const ttl = Math.max(1, Math.ceil(exp - Date.now() / 1000));
  const event = prepare({ kind: 'revoke', actor, target: { jti: id }, reason, ttlSeconds: ttl });
  return async (redis, keys) => {
    await revokeJti(redis, keys, id, exp, reason, actor);
    const done = `revoked jti ${id} until ${new Date(exp * 1000).toISOString()}`;
    await publishOrFail(redis, keys, event, done);
    console.log(`${done} (audited as ${event.event_id})`);
  };
}

/** Every token signed by the key `kid`, until --ttl or lifted; never the sidecar's current signing key (rotate it first). */
function revokeKidCommand(kid: string, options: Options, reason: string, actor: string): BansRun {
  const ttl = options.ttl === undefined ? undefined : duration(options.ttl);
  const event = prepare({ kind: 'revoke', actor, target: { kid }, reason, ttlSeconds: ttl });
  return async (redis, keys) => {
    const { current } = await new SigningKeyStore(redis, keys).read();
    if (current === kid) throw new UsageError(`${kid} is the sidecar's current signing key: run keys rotate first, then revoke it`);
    const until = ttl === undefined ? undefined : Date.now() + ttl * 1000;
    await revokeKid(redis, keys, kid, until);
    const done = `revoked every token signed by key ${kid} ${until === undefined ? 'until lifted' : `until ${new Date(until).toISOString()}`} (every sidecar within 1 s)`;
    await publishOrFail(redis, keys, event, done);
    console.log(`${done} (audited as ${event.event_id})`);
  };
}
