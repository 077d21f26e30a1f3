import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { eventually, freePorts, waitForPort } from './net.js';

/**
 * A private Redis Cluster of `masters` masters (no replicas) on free ports: `redis-server
 * --cluster-enabled yes` each, then `redis-cli --cluster create`. Ready once every node reports
 * `cluster_state:ok`.
 */
export class TestRedisCluster {
  private constructor(readonly ports: number[], private readonly children: ChildProcess[], private readonly dir: string) {}

  static async start(masters = 3): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-cluster-'));
    const ports: number[] = [];
    const children: ChildProcess[] = [];
    const cluster = new TestRedisCluster(ports, children, dir);
    try {
      for (let i = 0; i < masters; i++) {
        const [port, busPort] = (await freePorts(2)) as [number, number];
        ports.push(port);
        // Each node's own cluster state file and folder; the bus on a free port of its own (not port + 10000).
        const child = spawn(
          'redis-server',
          ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
            '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir, '--save', '', '--appendonly', 'no'],
          { stdio: 'ignore' },
        );
        children.push(child);
        await waitForPort(port);
      }
      await promisify(execFile)('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { timeout: 30_000 });
      await eventually(async () => {
        for (const port of ports) {
          const node = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            await node.connect();
            const info = await node.cluster('INFO');
            if (!info.includes('cluster_state:ok')) throw new Error(`node ${port}: ${info.split('\n')[0]}`);
          } finally {
            node.disconnect();
          }
        }
        return true;
      }, 30_000, 'every cluster node to report cluster_state:ok');
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** The nodes' process ids (to meter their CPU). */
  get pids(): number[] {
    return this.children.map((c) => c.pid as number);
  }

  /** `host:port,…` of every node, as REDIS_CLUSTER_NODES takes it. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null) return;
        child.kill('SIGKILL');
        await once(child, 'exit');
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
