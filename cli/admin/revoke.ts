/**
 * `admin revoke --token JWT | --jti ID [--ttl 1d] | --consumer ISSUER:SUB [--reason TEXT]`,
 * audited as a `revoke` security event (the jti, never the token, is its subject).
 */
import jwt from 'jsonwebtoken';
import type { GatewayConfig } from '../../common/config/schema.js';
import { adminCliActor } from '../../common/security-event.js';
import { revokeConsumer, revokeJti } from '../../common/security-state.js';
import { prepare, publishOrFail } from './audited.js';
import type { BansRun } from './bans.js';
import { consumerOf, duration, jtiOf, reasonOf, UsageError, type Options } from './usage.js';

/** The reason recorded when --reason is not given (revoke did not take one before it was audited). */
export const DEFAULT_REVOKE_REASON = 'manual revocation';

export function revokeCommand(options: Options, config: () => GatewayConfig): BansRun {
  const given = (['token', 'jti', 'consumer'] as const).filter((flag) => options[flag] !== undefined);
  if (given.length !== 1) throw new UsageError('revoke needs exactly one of --token, --jti, --consumer');
  const reason = reasonOf(options, 'revoke', DEFAULT_REVOKE_REASON);
  const actor = adminCliActor();
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
  const id = jtiOf(jti ?? '');
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
