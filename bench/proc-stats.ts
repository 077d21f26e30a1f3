import { readdirSync, readFileSync } from 'node:fs';

/** A process (or group) whose CPU time the benchmark attributes to requests. */
export interface Meter {
  name: string;
  cpu: () => number;
}

/** Starts metering `meters`; the function returned gives each one's CPU µs per unit of work done since. */
export function meterCpu(meters: readonly Meter[]): (units: number) => Record<string, number> {
  const before = meters.map((m) => m.cpu());
  return (units) => Object.fromEntries(meters.map((m, i) => [m.name, ((m.cpu() - before[i]!) * 1e6) / units]));
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** Fields of /proc/PID/stat after the command name: [11] utime, [12] stime, [13] cutime, [14] cstime. */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds of this process and of the children it has waited for: the load client (wrk, or autocannon in process). */
export function clientCpuSeconds(): number {
  const fields = statFields('self');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/** CPU seconds of a process and its children (nginx's master and workers). */
export function cpuSecondsWithChildren(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
  return cpuSeconds(pid) + children.reduce((sum, child) => sum + cpuSeconds(Number(child)), 0);
}

/** Resident set size in MiB, from /proc. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

/** Pids of every process whose command name is `name` (e.g. all PostgreSQL backends). */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** CPU seconds used so far by all processes named `name` that are still running. */
export function cpuSecondsNamed(name: string): number {
  return pidsNamed(name).reduce((sum, pid) => {
    try {
      return sum + cpuSeconds(pid);
    } catch {
      return sum;
    }
  }, 0);
}
