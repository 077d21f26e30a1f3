/**
 * The sidecar's copy of the keys a decision on a Redis Cluster cannot read in its own slot:
 * revoked token ids and ip bans (decision-plan.ts). Each key is held with its expiry.
 *
 * Kept fresh by pub/sub: every write of such a key announces its name on the security channel
 * in the same script (common/security-state.ts), and the copy re-reads the key's ttl at once.
 * The copy subscribes on every master: a write's announcement is delivered by the very node
 * that ran it, so it does not depend on the cluster bus. Losing any subscription (or a re-read
 * failing) marks the copy unsynced until every master is subscribed again and the keys are
 * scanned afresh; meanwhile decisions are refused (the caller fails closed, or open where a
 * route says so), never answered from a copy that may have missed a ban. So a ban applies as
 * soon as its announcement arrives (a pub/sub hop and one PTTL: milliseconds), or not at all.
 */
import { Redis, type Cluster } from 'ioredis';
import type { Logger } from '../../common/logger.js';
import type { BanKeyPattern, RedisKeys } from '../../common/redis-keys.js';
import { scanKeys } from '../../common/redis.js';

/** How often the masters are compared with the subscriptions (a failover adds a master). */
const FOLLOW_MS = 1_000;
/** How often expired keys are dropped from the copy (a lookup already ignores them). */
const SWEEP_MS = 60_000;

export class BanMirror {
  /** Key → when it expires (Date.now() ms; Infinity: until lifted). */
  private held = new Map<string, number>();
  /** One subscription per master, by `host:port`; `ready` once SUBSCRIBE was answered. */
  private readonly subscribers = new Map<string, { connection: Redis; ready: boolean }>();
  private synced = false;
  /** Keys announced while a scan runs: re-read once it is done (a scan's read may be older). */
  private dirty: Set<string> | undefined;
  /** Bumped whenever the copy may have missed an announcement; a scan begun before is void. */
  private epoch = 0;
  private readonly kinds: BanKeyPattern[];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {
    this.kinds = keys.banPatterns().filter((p) => p.kind !== 'consumer');
  }

  start(): void {
    this.cluster.on('ready', () => this.follow());
    this.timers.push(setInterval(() => this.follow(), FOLLOW_MS).unref(), setInterval(() => this.sweep(), SWEEP_MS).unref());
    this.follow();
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const { connection } of this.subscribers.values()) connection.disconnect();
    this.subscribers.clear();
  }

  /** True when the copy holds every announced change: decisions may rely on it. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** How many keys the copy holds (expired ones not yet swept included). */
  get size(): number {
    return this.held.size;
  }

  /** Whether `key` (a revoked jti or ip ban key) is set now. */
  has(key: string): boolean {
    const until = this.held.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.held.delete(key);
    return false;
  }

  /** Subscribes on every master that has no subscription yet, then scans when all are in. */
  private follow(): void {
    if (this.cluster.status !== 'ready') return;
    const masters = this.cluster.nodes('master');
    const nameOf = (node: Redis): string => `${node.options.host}:${node.options.port}`;
    const names = new Set(masters.map(nameOf));
    for (const [name, { connection }] of this.subscribers) {
      if (!names.has(name)) connection.disconnect(); // no longer a master; its 'end' removes it
    }
    for (const node of masters) {
      if (!this.subscribers.has(nameOf(node))) this.subscribe(nameOf(node), node);
    }
    if (!this.synced && this.dirty === undefined && [...this.subscribers.values()].every((s) => s.ready)) void this.scan();
  }

  private subscribe(name: string, node: Redis): void {
    this.lost(`subscribing on ${name}`);
    const { host, port, password, username, tls } = node.options;
    // No reconnects of its own: a lost subscription is replaced by follow(), after a rescan.
    const connection = new Redis({ host, port, password, username, tls, retryStrategy: () => null, maxRetriesPerRequest: 1, connectionName: 'gw-ban-mirror' });
    const entry = { connection, ready: false };
    this.subscribers.set(name, entry);
    connection.on('error', () => undefined); // 'end' follows; follow() replaces the connection
    connection.on('message', (_channel: string, key: string) => this.announced(key));
    connection.once('end', () => {
      if (this.subscribers.get(name) === entry) this.subscribers.delete(name);
      this.lost(`subscription on ${name} ended`);
    });
    connection.subscribe(this.keys.securityChannel).then(
      () => {
        entry.ready = true;
        this.follow();
      },
      () => connection.disconnect(),
    );
  }

  /** The copy may have missed an announcement: refuse until rescanned. */
  private lost(why: string): void {
    this.epoch++;
    if (this.synced) this.logger.warn('ban copy unsynced: decisions refused until it is scanned again', { code: 'ban_copy_unsynced', reason: why });
    this.synced = false;
    this.dirty = undefined;
  }

  private async scan(): Promise<void> {
    const epoch = this.epoch;
    const dirty = (this.dirty = new Set<string>());
    try {
      const held = new Map<string, number>();
      for (const kind of this.kinds) {
        const found = await scanKeys(this.cluster, kind.match);
        const ttls = await Promise.all(found.map((key) => this.cluster.pttl(key)));
        found.forEach((key, i) => remember(held, key, ttls[i]!));
      }
      // Announced meanwhile: read again now, after the scan's reads.
      const again = [...dirty];
      const ttls = await Promise.all(again.map((key) => this.cluster.pttl(key)));
      again.forEach((key, i) => remember(held, key, ttls[i]!));
      if (epoch !== this.epoch) return; // a subscription went away meanwhile: follow() scans again
      this.held = held;
      this.dirty = undefined;
      this.synced = true;
      this.logger.info('ban copy synced', { keys: held.size, masters: this.subscribers.size });
    } catch (err) {
      if (epoch === this.epoch) this.lost(`scan failed: ${(err as Error).message}`);
    }
  }

  private announced(key: string): void {
    if (!this.kinds.some((kind) => kind.owns(key))) return;
    if (this.dirty) return void this.dirty.add(key);
    if (!this.synced) return;
    const epoch = this.epoch;
    this.cluster.pttl(key).then(
      (ttl) => epoch === this.epoch && remember(this.held, key, ttl),
      (err: Error) => epoch === this.epoch && this.lost(`re-reading ${key} failed: ${err.message}`),
    );
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, until] of this.held) if (until <= now) this.held.delete(key);
  }
}

/** Holds `key` per its PTTL reply: -2 gone, -1 until lifted, else milliseconds left. */
function remember(held: Map<string, number>, key: string, ttl: number): void {
  if (ttl === -2) held.delete(key);
  else held.set(key, ttl === -1 ? Infinity : Date.now() + ttl);
}
