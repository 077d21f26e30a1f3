/**
 * `admin bans list|add|remove` (and the older `ban` / `unban`, the same with a default reason):
 * bans of an ip, a consumer or a token id, each change audited as a security event.
 */
import type { RedisClient } from '../../common/redis.js';
import type { GatewayConfig } from '../../common/config/schema.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { adminCliActor } from '../../common/security-event.js';
import { ban, listBans, unban, type ActiveBan } from '../../common/security-state.js';
import { prepare, publishOrFail } from './audited.js';
import { banTarget, describe, duration, reasonOf, UsageError, type Options } from './usage.js';

export type BansAction = 'list' | 'add' | 'remove';

/** A change, validated and ready to run once Redis is connected. */
export type BansRun = (redis: RedisClient, keys: RedisKeys) => Promise<void>;

/**
 * Validates the command's options (throws UsageError) and returns what runs it. `defaultReason`
 * is for the older `ban` / `unban`, which did not require --reason; `bans add|remove` do.
 */
export function bansCommand(action: BansAction, options: Options, config: () => GatewayConfig, defaultReason?: string): BansRun {
  if (action === 'list') {
    const stray = (['ip', 'consumer', 'jti', 'ttl', 'reason'] as const).filter((flag) => options[flag] !== undefined);
    if (stray.length > 0) throw new UsageError(`bans list does not take --${stray.join(', --')}`);
    return async (redis, keys) => printBans(await listBans(redis, keys), options.json === true);
  }
  const command = defaultReason === undefined ? `bans ${action}` : action === 'add' ? 'ban' : 'unban';
  const target = banTarget(options, config());
  const reason = reasonOf(options, command, defaultReason);
  if (action === 'remove' && options.ttl !== undefined) throw new UsageError(`${command} does not take --ttl`);
  const ttl = options.ttl === undefined ? undefined : duration(options.ttl);
  const actor = adminCliActor();
  if (action === 'add') {
    const event = prepare({ kind: 'ban', actor, target, reason, ttlSeconds: ttl });
    return async (redis, keys) => {
      await ban(redis, keys, target, reason, ttl, actor);
      const done = `banned ${describe(target)}${ttl ? ` for ${ttl}s` : ' until lifted'}`;
      await publishOrFail(redis, keys, event, done);
      console.log(`${done} (audited as ${event.event_id})`);
    };
  }
  const event = prepare({ kind: 'unban', actor, target, reason });
  return async (redis, keys) => {
    // Nothing lifted, nothing changed: no event (the audit records changes, not attempts).
    if (!(await unban(redis, keys, target))) return void console.log(`${describe(target)} was not banned: nothing changed`);
    const done = `unbanned ${describe(target)}`;
    await publishOrFail(redis, keys, event, done);
    console.log(`${done} (audited as ${event.event_id})`);
  };
}

const cell = (value: string | null, fallback = '-'): string => (value ?? fallback).replace(/[\u0000-\u001f\u007f]/g, '?');

function printBans(bans: ActiveBan[], json: boolean): void {
  if (json) return void console.log(JSON.stringify(bans, null, 2));
  if (bans.length === 0) return void console.log('(no active bans)');
  const rows = [
    ['KIND', 'SUBJECT', 'REASON', 'BY', 'SINCE', 'UNTIL'],
    ...bans.map((b) => [b.kind, cell(b.subject), cell(b.reason), cell(b.by), cell(b.since), cell(b.until, 'until lifted')]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n'));
}
