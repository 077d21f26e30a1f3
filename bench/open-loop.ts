/**
 * Latency at a fixed request rate, open loop: requests are sent on schedule whether or not
 * earlier ones have answered, and each latency counts from its scheduled time (no coordinated
 * omission, unlike a closed-loop client whose slow answers delay its next requests).
 */
import { Agent, request } from 'node:http';

export interface RateResult {
  sent: number;
  failed: number;
  /** The failures by what they were: an HTTP status, an error code, or `refused` (a decision that was not allow). */
  failures: Record<string, number>;
  p50ms: number;
  p99ms: number;
}

/** Sends one request; resolves true when it succeeded, else what went wrong. Never rejects. */
export type Send = () => Promise<true | string>;

export async function atFixedRate(send: Send, rate: number, seconds: number): Promise<RateResult> {
  const latencies: number[] = [];
  let failed = 0;
  const failures: Record<string, number> = {};
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // From the schedule when late (no coordinated omission), from the send when up to 1 ms early.
    const from = Math.min(due, performance.now());
    inFlight.push(
      send().then((outcome) => {
        if (outcome === true) latencies.push(performance.now() - from);
        else {
          failed++;
          failures[outcome] = (failures[outcome] ?? 0) + 1;
        }
      }),
    );
  }
  await Promise.all(inFlight);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { sent: total, failed, failures, p50ms: at(0.5), p99ms: at(0.99) };
}

/** GETs `url` at a fixed rate over keep-alive connections; a 200 counts as success. */
export async function httpAtFixedRate(url: string, headers: Record<string, string>, rate: number, seconds: number): Promise<RateResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const target = new URL(url);
  const get: Send = () =>
    new Promise((resolve) => {
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, headers, agent }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200 || String(res.statusCode)));
      });
      req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.end();
    });
  try {
    return await atFixedRate(get, rate, seconds);
  } finally {
    agent.destroy();
  }
}
