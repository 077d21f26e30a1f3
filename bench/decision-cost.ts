/**
 * What one decision costs, sidecar and Redis, on one Redis and on a 3-master Redis Cluster,
 * for one consumer (every decision in one slot) and for 100 (spread over the slots): a
 * sidecar of its own against a Redis of its own, driven over the gateway's CheckStream.
 * `npm run bench:decisions` prints it alone; `npm run bench` prints it among the rest.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../common/net.js';
import { LIMIT_ALGORITHMS, type LimitAlgorithm } from '../common/config/schema.js';
import { BENCH_SECRET, benchConfig, benchToken } from './bench-identity.js';
import { TestRedisCluster } from '../test/helpers/redis-cluster.js';
import { cpuSeconds, meterCpu, type Meter } from './proc-stats.js';
import { streamDecisions } from './sidecar-load.js';
import { start } from './spawn.js';

export interface DecisionCost {
  redis: 'one Redis' | '3-master cluster';
  consumers: number;
  perSecond: number;
  /** CPU µs per decision: sidecar, redis (all masters together). */
  cpuUs: Record<string, number>;
}

/** Measures each combination for `seconds`, one after the other. */
export async function decisionCosts(seconds: number, consumerCounts: readonly number[] = [1, 100]): Promise<DecisionCost[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-decisions-'));
  const costs: DecisionCost[] = [];
  let cluster: TestRedisCluster | undefined;
  try {
    // The upstream is never called: only the sidecar runs.
    writeFileSync(join(dir, 'gateway.yml'), benchConfig('http://127.0.0.1:9'));
    const redisPort = await freePort();
    const single = await start('decision-redis', ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, redisPort);
    cluster = await TestRedisCluster.start(3);
    const targets: { redis: DecisionCost['redis']; env: Record<string, string>; pids: number[] }[] = [
      { redis: 'one Redis', env: { REDIS_URL: `redis://127.0.0.1:${redisPort}` }, pids: [single.pid] },
      { redis: '3-master cluster', env: { REDIS_CLUSTER_NODES: cluster.nodes }, pids: cluster.pids },
    ];
    for (const target of targets) {
      const port = await freePort();
      const env = { NODE_ENV: 'production', GATEWAY_CONFIG: join(dir, 'gateway.yml'), REDIS_PREFIX: `dc${randomUUID().slice(0, 6)}`, LOG_LEVEL: 'warn', BENCH_SECRET, SIDECAR_PORT: String(port), ...target.env };
      const sidecar = await start(`decision-sidecar (${target.redis})`, ['auth-sidecar/main.js'], env, port);
      const meters: Meter[] = [
        { name: 'sidecar', cpu: () => cpuSeconds(sidecar.pid) },
        { name: 'redis', cpu: () => target.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) },
      ];
      for (const consumers of consumerCounts) {
        const tokens = Array.from({ length: consumers }, (_, i) => benchToken(`bench-${i}`));
        await warmUp(`127.0.0.1:${port}`, tokens);
        const cpuPerDecision = meterCpu(meters);
        const decisions = await streamDecisions(`127.0.0.1:${port}`, tokens, seconds);
        costs.push({ redis: target.redis, consumers, perSecond: decisions.perSecond, cpuUs: cpuPerDecision(decisions.total) });
      }
      sidecar.child.kill('SIGTERM');
    }
  } finally {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return costs;
}

/** Drives decisions for a second once the sidecar decides (its Redis, and on a cluster its ban copy, ready). */
async function warmUp(address: string, tokens: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await streamDecisions(address, tokens, 1);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * One decision's cost by limit algorithm, on one Redis, 100 consumers, one 1-second window of a
 * limit never reached (so every decision counts): what `algorithm` changes in decide.lua.
 */
export async function algorithmCosts(seconds: number): Promise<{ algorithm: LimitAlgorithm; perSecond: number; cpuUs: Record<string, number> }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-algorithms-'));
  const costs = [];
  try {
    const tokens = Array.from({ length: 100 }, (_, i) => benchToken(`bench-${i}`));
    for (const algorithm of LIMIT_ALGORITHMS) {
      writeFileSync(join(dir, `${algorithm}.yml`), benchConfig('http://127.0.0.1:9', undefined, `{ second: 1000000000, algorithm: ${algorithm} }`));
      const redisPort = await freePort();
      const redis = await start(`${algorithm}-redis`, ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, redisPort);
      const port = await freePort();
      const env = { NODE_ENV: 'production', GATEWAY_CONFIG: join(dir, `${algorithm}.yml`), REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PREFIX: 'alg', LOG_LEVEL: 'warn', BENCH_SECRET, SIDECAR_PORT: String(port) };
      const sidecar = await start(`${algorithm}-sidecar`, ['auth-sidecar/main.js'], env, port);
      await warmUp(`127.0.0.1:${port}`, tokens);
      const cpuPerDecision = meterCpu([
        { name: 'sidecar', cpu: () => cpuSeconds(sidecar.pid) },
        { name: 'redis', cpu: () => cpuSeconds(redis.pid) },
      ]);
      const decisions = await streamDecisions(`127.0.0.1:${port}`, tokens, seconds);
      costs.push({ algorithm, perSecond: decisions.perSecond, cpuUs: cpuPerDecision(decisions.total) });
      sidecar.child.kill('SIGTERM');
      redis.child.kill('SIGTERM');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return costs;
}

export function describeCost(cost: DecisionCost): string {
  const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return `decisions on ${cost.redis}, ${cost.consumers} consumer${cost.consumers === 1 ? '' : 's'} (CheckStream, 50 in flight): ${fmt(cost.perSecond)} decisions/s, CPU µs/decision: sidecar ${fmt(cost.cpuUs.sidecar!)}, redis ${fmt(cost.cpuUs.redis!)}`;
}

export function describeAlgorithms(costs: Awaited<ReturnType<typeof algorithmCosts>>): string[] {
  const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return costs.map(
    (c) => `decisions by algorithm ${c.algorithm.padEnd(7)} (one Redis, 100 consumers, CheckStream): ${fmt(c.perSecond)} decisions/s, CPU µs/decision: sidecar ${fmt(c.cpuUs['sidecar']!)}, redis ${fmt(c.cpuUs['redis']!)}`,
  );
}
