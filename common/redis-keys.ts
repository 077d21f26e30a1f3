/**
 * Every Redis key of the product is built here (like BullMQ's QueueKeys): the sidecar reads
 * what the worker and the admin CLI write only through these names.
 */
import type { WindowName } from './config/schema.js';

/** Percent-encodes `:` and anything outside a safe set, so client-chosen values cannot forge a key. */
function part(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Escapes the glob characters of SCAN's MATCH, so a prefix like `gw[1]` matches only itself. */
function literalGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The keys of one kind of ban, for SCAN: the MATCH pattern and the subject a matching key names. */
export interface BanKeyPattern {
  kind: 'ip' | 'consumer' | 'jti';
  match: string;
  /** The (decoded) subject of a key that `match` found. */
  subjectOf(key: string): string;
}

export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** A revoked token id; expires when the token would have. */
  revokedJti(jti: string): string {
    return `${this.prefix}:revoked:jti:${part(jti)}`;
  }

  /** Unix seconds before which every token of this consumer is revoked. */
  revokedConsumer(consumer: string): string {
    return `${this.prefix}:revoked:consumer:${part(consumer)}`;
  }

  banIp(ip: string): string {
    return `${this.prefix}:ban:ip:${part(ip)}`;
  }

  banConsumer(consumer: string): string {
    return `${this.prefix}:ban:consumer:${part(consumer)}`;
  }

  /**
   * Patterns of every key that bans a subject: ip bans, consumer bans and revoked token ids (a
   * banned jti is a revoked token). Consumer revocations (a second, not a ban) are not among them.
   */
  banPatterns(): BanKeyPattern[] {
    const of = (kind: BanKeyPattern['kind'], base: string): BanKeyPattern => ({
      kind,
      match: `${literalGlob(base)}*`,
      subjectOf: (key) => decodeURIComponent(key.slice(base.length)),
    });
    // The builders with an empty subject give each kind's base: the layout stays in one place.
    return [of('ip', this.banIp('')), of('consumer', this.banConsumer('')), of('jti', this.revokedJti(''))];
  }

  /**
   * Base of a fixed-window counter; the decision script appends `:<window index>`.
   * `scope` is `tier:<name>` or `route:<name>`; `subject` is e.g. `consumer:local:alice`.
   */
  rateCounter(scope: string, subject: string, window: WindowName): string {
    return `${this.prefix}:rl:${part(scope)}:${part(subject)}:${window}`;
  }

  /** Window counter of an anomaly rule for one subject (e.g. `ip:1.2.3.4`); `window` is the window's index. */
  anomalyCounter(rule: string, subject: string, window: number): string {
    return `${this.prefix}:anomaly:count:${part(rule)}:${part(subject)}:${window}`;
  }

  /** The open alert of a rule and subject (its id), kept for the cooldown after its last event. */
  anomalyAlert(rule: string, subject: string): string {
    return `${this.prefix}:anomaly:alert:${part(rule)}:${part(subject)}`;
  }

  /** Marks an audit event as counted by the rules, so a redelivered batch is not counted again. */
  anomalySeen(eventId: string): string {
    return `${this.prefix}:anomaly:seen:${part(eventId)}`;
  }

  /** A (jti, client ip) pair seen by token_many_ips, kept for the rule's window after its last sighting. */
  anomalySighting(pair: string): string {
    return `${this.prefix}:anomaly:sighting:${part(pair)}`;
  }

  /** A consumer's request-rate baseline for volume_spike (hash: current window, its count, the mean). */
  anomalyVolume(consumer: string): string {
    return `${this.prefix}:anomaly:volume:${part(consumer)}`;
  }

  /** Marks one automatic ban (by its id) as counted among its subject's offences; holds the offence number. */
  anomalyBanMarker(banId: string): string {
    return `${this.prefix}:anomaly:banned:${part(banId)}`;
  }

  /** How many automatic bans a subject has had recently (escalates the next ban's ttl). */
  banOffences(subject: string): string {
    return `${this.prefix}:anomaly:offences:${part(subject)}`;
  }

  /** BullMQ prefix of the product's queues. */
  get queuePrefix(): string {
    return `${this.prefix}:bull`;
  }
}
