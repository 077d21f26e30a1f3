/**
 * The admin CLI's input checks, shared by its commands: every option is validated here before
 * anything touches Redis, and each bad one is a UsageError (exit 2 with the usage text).
 */
import { z } from 'zod';
import type { GatewayConfig } from '../../common/config/schema.js';
import { parseDuration } from '../../common/duration.js';
import { canonicalIp } from '../../common/ip-address.js';
import { securityReason } from '../../common/security-event.js';
import type { BanTarget } from '../../common/security-state.js';

export class UsageError extends Error {}

/** The options of every command (node:util parseArgs). */
export const OPTIONS = {
  sub: { type: 'string' },
  issuer: { type: 'string' },
  groups: { type: 'string' },
  tier: { type: 'string' },
  ttl: { type: 'string' },
  token: { type: 'string' },
  jti: { type: 'string' },
  kid: { type: 'string' },
  consumer: { type: 'string' },
  ip: { type: 'string' },
  reason: { type: 'string' },
  scale: { type: 'string' },
  second: { type: 'string' },
  minute: { type: 'string' },
  hour: { type: 'string' },
  day: { type: 'string' },
  algorithm: { type: 'string' },
  burst: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Options = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** The longest jti the sidecar's audit events keep; a longer one cannot be a real token's. */
const JTI_MAX = 512;

/** Exactly one of --ip, --consumer, --jti. */
export function banTarget(options: Options, config: GatewayConfig): BanTarget {
  const given = (['ip', 'consumer', 'jti'] as const).filter((flag) => options[flag] !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --ip, --consumer, --jti');
  if (options.ip !== undefined) {
    const ip = canonicalIp(options.ip);
    if (!ip) throw new UsageError(`--ip ${options.ip} is not an IPv4 or IPv6 address`);
    return { ip };
  }
  if (options.consumer !== undefined) return { consumer: consumerOf(options.consumer, config) };
  return { jti: jtiOf(options.jti ?? '') };
}

/** `<issuer>:<sub>` with a configured issuer: the consumer id the sidecar keys bans and revocations on. */
export function consumerOf(text: string, config: GatewayConfig): string {
  const colon = text.indexOf(':');
  const issuer = colon > 0 ? text.slice(0, colon) : undefined;
  const names = config.issuers.map((i) => i.name);
  if (!issuer || !names.includes(issuer) || colon === text.length - 1) {
    throw new UsageError(`--consumer ${text} must be <issuer>:<sub> with a configured issuer (${names.join(', ') || 'none configured'})`);
  }
  return text;
}

/** A token id (or, `flag` --kid, a key id) as the sidecar sees it: 1-512 characters, none a control character. */
export function jtiOf(text: string, flag = '--jti'): string {
  if (text.length === 0 || text.length > JTI_MAX || /[\u0000-\u001f\u007f]/.test(text)) {
    throw new UsageError(`${flag} must be 1-${JTI_MAX} characters without control characters`);
  }
  return text;
}

/** The reason of a ban, unban or revocation: required where `fallback` is undefined. */
export function reasonOf(options: Options, command: string, fallback?: string): string {
  const reason = options.reason ?? fallback;
  if (reason === undefined) throw new UsageError(`${command} needs --reason TEXT (why: it is audited)`);
  const checked = securityReason.safeParse(reason);
  if (!checked.success) throw new UsageError(`--reason ${checked.error.issues.map((i) => i.message).join('; ')}`);
  return reason;
}

export function duration(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds === 0) throw new UsageError(`bad duration ${text}: use e.g. 90s, 15m, 1h, 7d`);
  return seconds;
}

export function describe(target: BanTarget): string {
  if ('ip' in target) return `ip ${target.ip}`;
  return 'consumer' in target ? `consumer ${target.consumer}` : `jti ${target.jti}`;
}

/** A ZodError of securityEvent() as bad usage (its input came from the options). */
export function usageFromZod(err: unknown): never {
  if (err instanceof z.ZodError) throw new UsageError(err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  throw err;
}
