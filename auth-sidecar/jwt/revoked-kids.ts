/**
 * The revoked signing keys (`admin revoke --kid`), as this sidecar holds them: re-read from Redis
 * every READ_MS, so a revocation reaches every sidecar within a second, verified-token cache or
 * not (CheckService asks for each token's kid). A failed read keeps the last set: a request that
 * needs Redis fails closed anyway while it is away.
 */
import type { Logger } from '../../common/logger.js';
import { Poll } from '../../common/poll.js';
import { isReady, type RedisClient } from '../../common/redis.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import { revokedKids } from '../../common/security-state.js';

const READ_MS = 500;

export class RevokedKids {
  private kids = new Map<string, number>();
  private readonly poll = new Poll(READ_MS, () => this.read());
  private failing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    return this.poll.start();
  }

  stop(): void {
    this.poll.stop();
  }

  has(kid: string): boolean {
    const until = this.kids.get(kid);
    return until !== undefined && until > Date.now();
  }

  private async read(): Promise<void> {
    // Not connected yet (or reconnecting): nothing to read; decisions fail closed meanwhile.
    if (!isReady(this.redis)) return;
    try {
      this.kids = await revokedKids(this.redis, this.keys);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn('revoked kids not read: the last ones read stay in force', { code: 'revoked_kids_unread', error: (err as Error).message });
      this.failing = true;
    }
  }
}
