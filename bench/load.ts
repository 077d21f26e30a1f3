/** Drives HTTP load with wrk when installed (C, so it steals little CPU), else autocannon. */
import { spawn, spawnSync } from 'node:child_process';
import autocannon from 'autocannon';

export interface LoadResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  client: 'wrk' | 'autocannon';
}

export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  /** Requests per second for the whole run (autocannon only): latency at a fixed rate. */
  rate?: number;
}

export const HAS_WRK = spawnSync('wrk', ['--version']).error === undefined;

export function load(options: LoadOptions): Promise<LoadResult> {
  return HAS_WRK && options.rate === undefined ? wrk(options) : cannon(options);
}

async function wrk(o: LoadOptions): Promise<LoadResult> {
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', ...Object.entries(o.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), o.url];
  const child = spawn('wrk', args);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  const ms = (label: string): number => {
    const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (!m) throw new Error(`cannot read ${label} from wrk:\n${out}`);
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as const)[m[2] as 'us' | 'ms' | 's'];
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50ms: ms('50%'), p99ms: ms('99%'), non2xx, client: 'wrk' };
}

async function cannon(o: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: o.url,
    headers: o.headers,
    connections: o.connections,
    duration: o.seconds,
    ...(o.rate === undefined ? {} : { overallRate: o.rate }),
  });
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    non2xx: result.non2xx,
    client: 'autocannon',
  };
}
