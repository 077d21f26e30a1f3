/**
 * Every Redis key of the product is built here (like BullMQ's QueueKeys): the sidecar reads
 * what the worker and the admin CLI write only through these names.
 *
 * Two layouts. `single` (one Redis, or Sentinel) is the original one. `cluster` puts each key in
 * the hash slot of what it is about, with a hash tag, so every Lua call's keys share one slot:
 * - `{consumer:<id>}`: the consumer's revocation, ban, and every counter counted by consumer;
 * - `{ip:<address>}`: the ip's ban and every counter counted by ip;
 * - `{header:<name>:<value>}`: counters counted by a header's value;
 * - `{jti:<id>}`: a revoked token id;
 * - `{user:<name>}`: a user of the sidecar's own issuer and its failed logins;
 * - `{refresh:<family>}`: one login's refresh family and the tokens it has rotated out;
 * - `{signing}`: the sidecar's signing keys and the revoked kids;
 * - `{anomaly}`: every anomaly rule's state (the worker's scripts count a batch at once);
 * - `{bull}`: the audit queue (BullMQ needs all of a queue's keys in one slot).
 * Subjects are percent-encoded (part()), so a client-chosen value can never hold a `{` or `}`.
 */
import type { WindowName } from './config/schema.js';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

export type KeyLayout = 'single' | 'cluster';

/** Percent-encodes `:` and anything outside a safe set, so client-chosen values cannot forge a key. */
function part(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Escapes the glob characters of SCAN's MATCH, so a prefix like `gw[1]` matches only itself. */
function literalGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Keys of one kind, for SCAN: the MATCH pattern and the subject a matching key names. */
export interface KeyPattern {
  match: string;
  /** The (decoded) subject of a key that `match` found. */
  subjectOf(key: string): string;
  /** Whether `key` is a key of this kind. */
  owns(key: string): boolean;
}

/** The keys of one kind of ban. */
export interface BanKeyPattern extends KeyPattern {
  kind: 'ip' | 'consumer' | 'jti';
}

export class RedisKeys {
  constructor(
    readonly prefix: string,
    readonly layout: KeyLayout = 'single',
  ) {}

  /** The keys of `prefix` in the layout `redis` needs: `cluster` on a Redis Cluster. */
  static of(prefix: string, redis: RedisClient): RedisKeys {
    return new RedisKeys(prefix, redis instanceof Cluster ? 'cluster' : 'single');
  }

  /**
   * `<prefix>:<kind>:<subject>:<rest>` in the single layout; in the cluster layout the subject's
   * hash tag comes first, `<prefix>:{<kind>:<subject>}:<rest>`. `subject` is already encoded.
   */
  private about(kind: string, subject: string, rest: string): string {
    return this.layout === 'cluster' ? `${this.prefix}:{${kind}:${subject}}:${rest}` : `${this.prefix}:${rest}:${kind}:${subject}`;
  }

  /** `<prefix>:<group>:<rest>`, in the cluster layout with the group as a hash tag. */
  private grouped(group: string, rest: string): string {
    return this.layout === 'cluster' ? `${this.prefix}:{${group}}:${rest}` : `${this.prefix}:${group}:${rest}`;
  }

  /** A revoked token id; expires when the token would have. */
  revokedJti(jti: string): string {
    return this.about('jti', part(jti), 'revoked');
  }

  /** Unix seconds before which every token of this consumer is revoked. */
  revokedConsumer(consumer: string): string {
    return this.about('consumer', part(consumer), 'revoked');
  }

  /** Every consumer revocation's key, for SCAN and for telling one from an announced key name. */
  revokedConsumerPattern(): KeyPattern {
    return this.patternOf((s) => this.revokedConsumer(s));
  }

  banIp(ip: string): string {
    return this.about('ip', part(ip), 'ban');
  }

  banConsumer(consumer: string): string {
    return this.about('consumer', part(consumer), 'ban');
  }

  /** A user of the sidecar's own issuer (hash: bcrypt hash, groups, tier, disabled, ...). */
  user(username: string): string {
    return this.about('user', part(username), 'account');
  }

  /** Every user's key, for SCAN. */
  userPattern(): KeyPattern {
    return this.patternOf((s) => this.user(s));
  }

  /** Failed logins in the current throttle window, per username or per client ip. */
  loginFailures(kind: 'user' | 'ip', subject: string): string {
    return this.about(kind, part(subject), 'login-failures');
  }

  /** One login's refresh family (hash: user, created, hash of the current token, last access token). */
  refreshFamily(family: string): string {
    return this.about('refresh', part(family), 'family');
  }

  /** Hashes of the refresh tokens a family has rotated out: presenting one again is reuse. */
  refreshRotated(family: string): string {
    return this.about('refresh', part(family), 'rotated');
  }

  /** The sidecar's signing keys (hash: `key:<kid>` records, `current`, `retired:<kid>`). */
  get signingKeys(): string {
    return this.grouped('signing', 'keys');
  }

  /** Revoked key ids (hash: kid -> unix ms until which it is revoked, 0: until lifted). */
  get revokedKids(): string {
    return this.grouped('signing', 'revoked-kids');
  }

  /** Consumers' own rate limits set with `admin limits set` (hash: consumer -> JSON of a LimitOverride). */
  get limitOverrides(): string {
    return this.grouped('limits', 'overrides');
  }

  /** Bumped on every change of limitOverrides, so sidecars re-read the hash only when it changed. */
  get limitOverridesVersion(): string {
    return this.grouped('limits', 'overrides-version');
  }

  /** The SCAN pattern of keys `build` makes, and the (decoded) subject of a key it found. */
  private patternOf(build: (subject: string) => string): KeyPattern {
    const marker = part('\0');
    const [before = '', after = ''] = build('\0').split(marker);
    return {
      match: `${literalGlob(before)}*${literalGlob(after)}`,
      subjectOf: (key) => decodeURIComponent(key.slice(before.length, key.length - after.length)),
      owns: (key) => key.length > before.length + after.length && key.startsWith(before) && key.endsWith(after),
    };
  }

  /**
   * Patterns of every key that bans a subject: ip bans, consumer bans and revoked token ids (a
   * banned jti is a revoked token). Consumer revocations (a second, not a ban) are not among them.
   */
  banPatterns(): BanKeyPattern[] {
    // Each kind's key built around a marker subject: the layout stays in the builders.
    const of = (kind: BanKeyPattern['kind'], build: (subject: string) => string): BanKeyPattern => ({ kind, ...this.patternOf(build) });
    return [of('ip', (s) => this.banIp(s)), of('consumer', (s) => this.banConsumer(s)), of('jti', (s) => this.revokedJti(s))];
  }

  /**
   * Base of a rate-limit counter; the decision script appends its algorithm's suffix.
   * `scope` is `tier:<name>` or `route:<name>`; `subjects` what it counts by, e.g.
   * [`consumer:local:alice`] or [`consumer:local:alice`, `ip:203.0.113.7`]: on a cluster the
   * first one's slot holds it.
   */
  rateCounter(scope: string, subjects: readonly [string, ...string[]], window: WindowName): string {
    if (this.layout === 'single') return `${this.prefix}:rl:${part(scope)}:${subjects.map(part).join(':')}:${window}`;
    const [first, ...more] = subjects;
    const colon = first.indexOf(':');
    return this.about(first.slice(0, colon), part(first.slice(colon + 1)), `rl:${part(scope)}${more.map((s) => `:${part(s)}`).join('')}:${window}`);
  }

  /** Window counter of an anomaly rule for one subject (e.g. `ip:1.2.3.4`); `window` is the window's index. */
  anomalyCounter(rule: string, subject: string, window: number): string {
    return this.grouped('anomaly', `count:${part(rule)}:${part(subject)}:${window}`);
  }

  /** The open alert of a rule and subject (its id), kept for the cooldown after its last event. */
  anomalyAlert(rule: string, subject: string): string {
    return this.grouped('anomaly', `alert:${part(rule)}:${part(subject)}`);
  }

  /** Marks an audit event as counted by the rules, so a redelivered batch is not counted again. */
  anomalySeen(eventId: string): string {
    return this.grouped('anomaly', `seen:${part(eventId)}`);
  }

  /** A (jti, client ip) pair seen by token_many_ips, kept for the rule's window after its last sighting. */
  anomalySighting(pair: string): string {
    return this.grouped('anomaly', `sighting:${part(pair)}`);
  }

  /** A consumer's request-rate baseline for volume_spike (hash: current window, its count, the mean). */
  anomalyVolume(consumer: string): string {
    return this.grouped('anomaly', `volume:${part(consumer)}`);
  }

  /** Marks one automatic ban (by its id) as counted among its subject's offences; holds the offence number. */
  anomalyBanMarker(banId: string): string {
    return this.grouped('anomaly', `banned:${part(banId)}`);
  }

  /** How many automatic bans a subject has had recently (escalates the next ban's ttl). */
  banOffences(subject: string): string {
    return this.grouped('anomaly', `offences:${part(subject)}`);
  }

  /** Pub/sub channel on which every change of a ban or revoked jti key is announced (the key's name). */
  get securityChannel(): string {
    return `${this.prefix}:security-state`;
  }

  /** BullMQ prefix of the product's queues. */
  get queuePrefix(): string {
    return this.layout === 'cluster' ? `${this.prefix}:{bull}` : `${this.prefix}:bull`;
  }
}
