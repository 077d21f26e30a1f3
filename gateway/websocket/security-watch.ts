/**
 * Closes open WebSockets that a change of security state now refuses, as the sidecar would
 * refuse their handshake: a revoked jti, a consumer revocation covering the token's iat, a
 * revoked kid, a banned consumer or ip. Every such write announces its key on the security
 * channel in the same Redis script (common/security-state.ts); this subscribes to it, re-reads
 * the key (an unban or an expiry announces too) and closes the matching sockets with 1008.
 * So a socket closes within a pub/sub hop and one read of the write. While the subscription is
 * down announcements are missed: when it is back, every open socket is checked afresh.
 */
import { Cluster } from 'ioredis';
import type { Logger } from '../../common/logger.js';
import type { RedisClient } from '../../common/redis.js';
import type { KeyPattern, RedisKeys } from '../../common/redis-keys.js';
import { isBanned, revokedKids } from '../../common/security-state.js';
import type { OpenSocket, OpenSockets } from './open-sockets.js';

type Subscriber = ReturnType<RedisClient['duplicate']>;

export class SecurityWatch {
  private subscriber: Subscriber | undefined;
  private readonly patterns: { ip: KeyPattern; consumerBan: KeyPattern; jti: KeyPattern; consumerRevoked: KeyPattern };

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly sockets: OpenSockets,
    private readonly logger: Logger,
  ) {
    const bans = Object.fromEntries(keys.banPatterns().map((p) => [p.kind, p]));
    this.patterns = { ip: bans['ip']!, consumerBan: bans['consumer']!, jti: bans['jti']!, consumerRevoked: keys.revokedConsumerPattern() };
  }

  start(): void {
    // It subscribes on every 'ready' itself, with its errors handled: ioredis's own resubscription
    // leaves its promise unhandled (see isDroppedRedisCommand), so it is off (a cluster's
    // subscriber resubscribes its own way, handled).
    const subscriber = this.redis instanceof Cluster ? this.redis.duplicate() : this.redis.duplicate({ autoResubscribe: false });
    this.subscriber = subscriber;
    subscriber.on('error', (err: Error) => this.logger.warn('security watch: redis error', { error: err.message }));
    subscriber.on('message', (_channel: string, key: string) => void this.announced(key).catch((err: Error) => this.failed(err)));
    // (Re)connected: subscribe, then check every open socket: announcements may have been missed meanwhile.
    subscriber.on('ready', () =>
      void subscriber
        .subscribe(this.keys.securityChannel)
        .then(() => this.recheckAll())
        .catch((err: Error) => this.failed(err)),
    );
  }

  stop(): void {
    this.subscriber?.disconnect();
  }

  /** Re-reads an announced key and closes the sockets it now refuses. */
  private async announced(key: string): Promise<void> {
    const { ip, consumerBan, jti, consumerRevoked } = this.patterns;
    if (key === this.keys.revokedKids) {
      for (const kid of (await revokedKids(this.redis, this.keys)).keys()) this.sockets.closeWhere('kid', kid, 'key revoked');
    } else if (consumerRevoked.owns(key)) {
      const second = Number(await this.redis.get(key));
      if (second > 0) this.sockets.closeWhere('consumer', consumerRevoked.subjectOf(key), 'consumer revoked', (s) => s.iat <= second);
    } else {
      const kind = ip.owns(key) ? 'clientIp' : consumerBan.owns(key) ? 'consumer' : jti.owns(key) ? 'jti' : undefined;
      if (kind === undefined || (await this.redis.exists(key)) === 0) return;
      const pattern = kind === 'clientIp' ? ip : kind === 'consumer' ? consumerBan : jti;
      this.sockets.closeWhere(kind, pattern.subjectOf(key), kind === 'jti' ? 'token revoked' : 'banned');
    }
  }

  private async recheckAll(): Promise<void> {
    const kids = await revokedKids(this.redis, this.keys);
    for (const socket of this.sockets.all()) {
      const reason = await this.refusal(socket, kids);
      if (reason) socket.close(reason);
    }
  }

  private async refusal(socket: OpenSocket, kids: Map<string, number>): Promise<string | undefined> {
    if (socket.kid !== null && kids.has(socket.kid)) return 'key revoked';
    if (socket.jti !== null && (await isBanned(this.redis, this.keys, { jti: socket.jti }))) return 'token revoked';
    if (await isBanned(this.redis, this.keys, { ip: socket.clientIp })) return 'banned';
    if (socket.consumer === null) return undefined;
    if (await isBanned(this.redis, this.keys, { consumer: socket.consumer })) return 'banned';
    const second = Number(await this.redis.get(this.keys.revokedConsumer(socket.consumer)));
    return second > 0 && socket.iat <= second ? 'consumer revoked' : undefined;
  }

  private failed(err: Error): void {
    this.logger.warn('security watch: could not re-read an announced key', { code: 'websocket_watch_failed', error: err.message });
  }
}
