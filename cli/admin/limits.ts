/**
 * `admin limits list|set|clear`: a consumer's own rate limit in place of its tier's (the
 * config's `limit_overrides` are the other source; these win). Every sidecar applies a change
 * within a second; each set and clear is audited as a security event.
 */
import { limitOverrideSchema, WINDOW_NAMES, type GatewayConfig, type LimitOverride } from '../../common/config/schema.js';
import { clearLimitOverride, readLimitOverrides, setLimitOverride } from '../../common/limit-overrides.js';
import { adminCliActor } from '../../common/security-event.js';
import { table } from '../audit/views.js';
import { prepare, publishOrFail } from './audited.js';
import type { BansRun } from './bans.js';
import { consumerOf, reasonOf, UsageError, type Options } from './usage.js';

export const LIMITS_ACTIONS = ['list', 'set', 'clear'] as const;
export type LimitsAction = (typeof LIMITS_ACTIONS)[number];

/** The options that make an override, as `limit_overrides` spells its keys. */
const OVERRIDE_FLAGS = ['scale', ...WINDOW_NAMES, 'algorithm', 'burst'] as const;

export function limitsCommand(action: LimitsAction, options: Options, config: () => GatewayConfig): BansRun {
  const given = OVERRIDE_FLAGS.filter((flag) => options[flag] !== undefined);
  if (action === 'list') {
    if (given.length > 0 || options.consumer !== undefined || options.reason !== undefined) throw new UsageError('limits list takes only --json');
    return async (redis, keys) => printOverrides(config().limit_overrides, (await readLimitOverrides(redis, keys)).overrides, options.json === true);
  }
  if (options.consumer === undefined) throw new UsageError(`limits ${action} needs --consumer ISSUER:SUB`);
  const consumer = consumerOf(options.consumer, config());
  const actor = adminCliActor();
  if (action === 'clear') {
    if (given.length > 0) throw new UsageError(`limits clear does not take --${given.join(', --')}`);
    const event = prepare({ kind: 'limit_clear', actor, target: { consumer }, reason: reasonOf(options, 'limits clear') });
    return async (redis, keys) => {
      if (!(await clearLimitOverride(redis, keys, consumer))) return void console.log(`consumer ${consumer} had no limit set with limits set: nothing changed`);
      const done = `cleared the limit of consumer ${consumer} (its tier's applies, or the config's limit_overrides)`;
      await publishOrFail(redis, keys, event, done);
      console.log(`${done} (audited as ${event.event_id})`);
    };
  }
  const override = overrideOf(options, given);
  const summary = describeOverride(override);
  const event = prepare({ kind: 'limit_set', actor, target: { consumer }, reason: `${reasonOf(options, 'limits set')} [${summary}]` });
  return async (redis, keys) => {
    await setLimitOverride(redis, keys, consumer, override);
    const done = `set the limit of consumer ${consumer}: ${summary}`;
    await publishOrFail(redis, keys, event, done);
    console.log(`${done} (audited as ${event.event_id})`);
  };
}

/** The override the flags spell, checked by the config's own schema. */
function overrideOf(options: Options, given: readonly (typeof OVERRIDE_FLAGS)[number][]): LimitOverride {
  if (given.length === 0) throw new UsageError('limits set needs --scale N, or windows (--second, --minute, --hour, --day N) with an optional --algorithm and --burst');
  const raw: Record<string, unknown> = {};
  for (const flag of given) {
    const text = options[flag]!;
    if (flag === 'algorithm') raw[flag] = text;
    else {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} ${text} is not a number`);
      raw[flag] = n;
    }
  }
  const parsed = limitOverrideSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.length ? `--${i.path.join('.')}: ` : ''}${i.message}`).join('; '));
  return parsed.data;
}

function describeOverride(override: LimitOverride): string {
  return Object.entries(override)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function printOverrides(configured: Readonly<Record<string, LimitOverride>>, set: ReadonlyMap<string, LimitOverride>, json: boolean): void {
  const rows = [
    ...[...set].map(([consumer, override]) => ({ consumer, source: 'admin', override })),
    ...Object.entries(configured).filter(([consumer]) => !set.has(consumer)).map(([consumer, override]) => ({ consumer, source: 'config', override })),
  ];
  if (json) return void console.log(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return void console.log('(no consumer limits: every consumer has its tier\'s)');
  console.log(table(rows, [['CONSUMER', (r) => r.consumer], ['SOURCE', (r) => r.source], ['LIMIT', (r) => describeOverride(r.override as LimitOverride)]]));
}
