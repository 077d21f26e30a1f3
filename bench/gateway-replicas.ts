/**
 * The full stack's throughput with 1 and with 2 gateways, both behind the same local balancer
 * (scripts/local-balancer.ts: nginx when installed), interleaved rounds; with the CPU each
 * process spends per request. On 2 cores every process of the stack shares them, so a second
 * gateway adds a process to schedule more than it adds CPU: the figure says what it does here.
 */
import { freePort } from '../common/net.js';
import { localBalancer } from '../scripts/local-balancer.js';
import { load } from './load.js';
import { cpuSeconds, cpuSecondsWithChildren, meterCpu, type Meter } from './proc-stats.js';
import { start, type Running } from './spawn.js';

export interface ReplicaRound {
  gateways: 1 | 2;
  rps: number;
  p99ms: number;
  non2xx: number;
  cpuUsPerRequest: Record<string, number>;
}

export interface ReplicaFigures {
  balancer: string;
  rounds: ReplicaRound[];
  /** Requests the clients saw answered (each must be stored). */
  requests: number;
}

export async function gatewayReplicas(options: {
  dir: string;
  first: Running;
  firstPort: number;
  gatewayEnv: Record<string, string>;
  others: Meter[];
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  rounds: number;
}): Promise<ReplicaFigures> {
  const secondPort = await freePort();
  const second = await start('gateway-2', ['gateway/main.js'], { ...options.gatewayEnv, GATEWAY_PORT: String(secondPort) }, secondPort);
  const balancers = new Map<1 | 2, { url: string; meter: Meter; name: string }>();
  for (const [count, ports] of [[1, [options.firstPort]], [2, [options.firstPort, secondPort]]] as const) {
    const port = await freePort();
    const spec = localBalancer(port, [...ports], `${options.dir}/balancer-${count}`);
    const running = await start(`${spec.name}-${count}`, spec.command, {}, port);
    balancers.set(count, { url: `http://127.0.0.1:${port}/users/1`, name: spec.name, meter: { name: 'balancer', cpu: () => cpuSecondsWithChildren(running.pid) } });
  }
  const meter = (r: Running, name: string): Meter => ({ name, cpu: () => cpuSeconds(r.pid) });
  const rounds: ReplicaRound[] = [];
  let requests = 0;
  for (let r = 0; r < options.rounds; r++) {
    for (const count of [1, 2] as const) {
      const balancer = balancers.get(count)!;
      const gateways = count === 1 ? [meter(options.first, 'gateway')] : [meter(options.first, 'gateway-1'), meter(second, 'gateway-2')];
      const cpu = meterCpu([balancer.meter, ...gateways, ...options.others]);
      const result = await load({ url: balancer.url, headers: options.headers, connections: options.connections, seconds: options.seconds });
      requests += result.requests;
      rounds.push({ gateways: count, rps: result.rps, p99ms: result.p99ms, non2xx: result.non2xx, cpuUsPerRequest: cpu(result.requests) });
    }
  }
  return { balancer: balancers.get(1)!.name, rounds, requests };
}
