/**
 * One upstream: its targets, which one serves the next request, and which are out.
 * - Weighted round robin is nginx's smooth one (each target's share evenly spread, no bursts);
 *   least connections picks the fewest requests in flight per weight.
 * - Passive health: a target that fails `health.failures` times in a row (connection refused or
 *   reset, a timeout, an answer in `fail_statuses`) is out for `cooldown_s`, then tried again: one
 *   more failure and it is out again, a success and it is back for good.
 * - A route's plain URL is a pool of one target without health checks (it is never taken out:
 *   there is nowhere else to send its requests).
 * Active probes (probe.ts) report into the same counts.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { UpstreamConfig } from '../../common/config/schema.js';

export interface Target {
  /** Its place in the pool's `targets`. */
  readonly index: number;
  /** The target's URL as configured (its origin and path). */
  readonly url: string;
  readonly weight: number;
  readonly agent: HttpAgent;
  /** Requests in flight. */
  active: number;
  /** Failures in a row. */
  failures: number;
  /** Date.now() until which it is out; 0 when in. */
  downUntil: number;
  /** Smooth weighted round robin's running weight. */
  current: number;
}

type Health = UpstreamConfig['health'];

export class UpstreamPool {
  readonly targets: Target[];
  private readonly failStatuses: ReadonlySet<number>;
  readonly retryMethods: ReadonlySet<string>;

  constructor(
    readonly name: string,
    targets: readonly { url: string; weight: number }[],
    private readonly balance: UpstreamConfig['balance'],
    /** Undefined: a plain URL, never taken out. */
    private readonly health: Health | undefined,
    retryMethods: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.targets = targets.map((t, index) => ({ index, url: t.url, weight: t.weight, agent: agentFor(t.url), active: 0, failures: 0, downUntil: 0, current: 0 }));
    this.failStatuses = new Set(health?.fail_statuses ?? []);
    this.retryMethods = new Set(retryMethods);
  }

  static ofUrl(url: string): UpstreamPool {
    return new UpstreamPool(url, [{ url, weight: 1 }], 'round_robin', undefined, []);
  }

  static of(config: UpstreamConfig): UpstreamPool {
    return new UpstreamPool(config.name, config.targets, config.balance, config.health, config.retry_methods);
  }

  /** The target for the next request (not `except`), counted in flight; undefined when every target is out. */
  pick(except?: Target): Target | undefined {
    const targets = this.targets;
    if (targets.length === 1) {
      const only = targets[0]!;
      return only !== except && this.isIn(only) ? this.started(only) : undefined;
    }
    const now = this.now();
    let chosen: Target | undefined;
    if (this.balance === 'least_connections') {
      for (const t of targets) {
        if (t === except || !this.isIn(t, now)) continue;
        if (!chosen || t.active * chosen.weight < chosen.active * t.weight) chosen = t;
      }
      return chosen && this.started(chosen);
    }
    let total = 0;
    for (const t of targets) {
      if (t === except || !this.isIn(t, now)) continue;
      t.current += t.weight;
      total += t.weight;
      if (!chosen || t.current > chosen.current) chosen = t;
    }
    if (!chosen) return undefined;
    chosen.current -= total;
    return this.started(chosen);
  }

  /** The request sent to `target` is over (answered or failed). */
  finished(target: Target): void {
    target.active--;
  }

  /** An answer came from `target`: a failure when its status is in fail_statuses. */
  answered(target: Target, status: number): void {
    if (this.failStatuses.has(status)) this.failed(target);
    else this.succeeded(target);
  }

  succeeded(target: Target): void {
    target.failures = 0;
    target.downUntil = 0;
  }

  failed(target: Target): void {
    if (!this.health) return;
    target.failures++;
    if (target.failures >= this.health.failures) {
      target.downUntil = this.now() + this.health.cooldown_s * 1000;
      // Back after the cool-down on probation: one more failure takes it out again.
      target.failures = this.health.failures - 1;
    }
  }

  isIn(target: Target, now = this.now()): boolean {
    return target.downUntil <= now;
  }

  close(): void {
    for (const t of this.targets) t.agent.destroy();
  }

  private started(target: Target): Target {
    target.active++;
    return target;
  }
}

function agentFor(url: string): HttpAgent {
  const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64 };
  return url.startsWith('https:') ? new HttpsAgent(options) : new HttpAgent(options);
}
