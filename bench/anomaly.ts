/**
 * The anomaly rules' figures: what they cost per event (run in this process against the bench's
 * Redis, as the worker runs them after each stored batch), and how long an attack takes to be
 * banned through the running stack.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import winston from 'winston';
import { AnomalyRules } from '../audit-worker/anomaly/anomaly-rules.js';
import type { AuditEvent } from '../common/audit-event.js';
import { parseConfig } from '../common/config/load.js';
import { RedisKeys } from '../common/redis-keys.js';
import { cpuSeconds } from './proc-stats.js';

const BATCH = 200;
const EVENTS = 100_000;

export interface RulesCost {
  mix: string;
  /** CPU µs per event: the worker's share (this process) and Redis's. */
  workerUs: number;
  redisUs: number;
}

/** Event mixes: ordinary traffic, then two attacks at full rate. */
const MIXES: Record<string, (i: number) => Partial<AuditEvent>> = {
  // 1,000 consumers, one token and one address each; 2 % refused tokens from 50 addresses, 1 % rate limited.
  'ordinary traffic': (i) => {
    const user = i % 1000;
    if (i % 50 === 7) return { status: 401, decision: 'deny', reason: 'token_invalid', sub: null, consumer: null, jti: null, client_ip: `198.51.100.${i % 50}` };
    const who = { sub: `u${user}`, consumer: `bench:u${user}`, jti: `token-${user}`, client_ip: `10.0.${user >> 8}.${user & 255}` };
    return i % 100 === 3 ? { ...who, status: 429, decision: 'deny', reason: 'rate_limited' } : who;
  },
  'allowed requests of 100 users': (i) => ({ sub: `u${i % 100}`, consumer: `bench:u${i % 100}`, jti: `token-${i % 100}`, client_ip: `10.0.0.${i % 100}` }),
  'refused tokens, one address': () => ({ status: 401, decision: 'deny', reason: 'token_invalid', sub: null, consumer: null, jti: null, client_ip: '203.0.113.9' }),
  'refused tokens, each from another address': (i) => ({ status: 401, decision: 'deny', reason: 'token_invalid', sub: null, consumer: null, jti: null, client_ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }),
};

function event(ts: string, overrides: Partial<AuditEvent>): AuditEvent {
  return {
    event_id: randomUUID(), ts, request_id: randomUUID(), gateway_id: 'bench-rules', route: 'api', method: 'GET', path: '/users/1', status: 200,
    decision: 'allow', reason: null, detail: null, sub: null, consumer: null, jti: null, token_iat: null, client_ip: '127.0.0.1', user_agent: 'bench',
    latency_ms: 1.5, upstream_status: 200, bytes_out: 300, upstream_target: null, upstream_tries: 1, bytes_in: null, rate_limit: null, fail_open: false, shadow: false, trace_id: null, config_hash: null, truncated: [], ...overrides,
  };
}

/**
 * CPU per event of the default rules over `EVENTS` events of each mix, in batches of 200: each mix
 * runs twice, with the rules and with a no-op in their place, and the difference is the rules'
 * (the batches are made in the loop, as a worker receives them, so the bench's own allocation
 * and garbage collection cancel out).
 */
export async function anomalyRulesCost(redisUrl: string, redisPid: number, only?: string): Promise<RulesCost[]> {
  const redis = new Redis(redisUrl);
  const config = parseConfig('routes: [{ name: a, paths: [/a], upstream: "http://127.0.0.1:1" }]\n', 'bench.yml', {}).anomaly;
  const logger = winston.createLogger({ silent: true });
  // A prefix of its own each time: counts start from nothing, and the bans these mixes provoke never reach the stack's sidecar.
  const results: RulesCost[] = [];
  const measure = async (shape: (i: number) => Partial<AuditEvent>, rules?: AnomalyRules, events = EVENTS) => {
    const before = { worker: process.cpuUsage(), redis: cpuSeconds(redisPid) };
    rules?.start();
    for (let b = 0; b < events / BATCH; b++) {
      const ts = new Date().toISOString();
      const batch = Array.from({ length: BATCH }, (_, i) => event(ts, shape(b * BATCH + i)));
      await rules?.afterStore(batch);
    }
    await rules?.close();
    const worker = process.cpuUsage(before.worker);
    return { worker: (worker.user + worker.system) / events, redis: ((cpuSeconds(redisPid) - before.redis) * 1e6) / events };
  };
  const fresh = () => new AnomalyRules(redis, new RedisKeys(`bench-rules-${randomUUID().slice(0, 6)}`), config, { alerts: { upsert: async () => undefined }, securityEvents: { insert: async () => undefined } }, logger);
  try {
    // Warm-up, so the first mix measured does not pay for the JIT.
    for (const shape of Object.values(MIXES)) await measure(shape, fresh(), EVENTS / 5);
    for (const [mix, shape] of Object.entries(MIXES).filter(([name]) => !only || name === only)) {
      const control = await measure(shape);
      const withRules = await measure(shape, fresh());
      results.push({ mix, workerUs: withRules.worker - control.worker, redisUs: withRules.redis - control.redis });
    }
  } finally {
    redis.disconnect();
  }
  return results;
}

export interface BanLatency {
  ms: number[];
  /** Requests sent to the gateway (each one leaves an audit event). */
  requests: number;
}

/**
 * `incidents` times: 30 refused tokens from one loopback address (127.0.0.100 and up), then a
 * valid token from it every 5 ms until it is refused 403: the time from the 30th refusal's answer
 * to that 403 is how long the ban took (event → queue → worker → rules → Redis → sidecar). Each
 * incident presents a token of its own (`token()`): one token seen from 10 addresses would be
 * revoked by token_many_ips, and answered 401 rather than 403.
 */
export async function banLatency(gatewayUrl: string, token: () => string, incidents = 20, threshold = 30): Promise<BanLatency> {
  const url = new URL(gatewayUrl);
  let requests = 0;
  const ms: number[] = [];
  for (let n = 0; n < incidents; n++) {
    const agent = new Agent({ keepAlive: true, localAddress: `127.0.0.${100 + n}` } as ConstructorParameters<typeof Agent>[0]);
    const get = (bearer: string) => {
      requests += 1;
      return statusOf(agent, url, bearer);
    };
    const valid = token();
    try {
      for (let i = 0; i < threshold; i++) await get('forged.token.value');
      const crossed = performance.now();
      const deadline = crossed + 30_000;
      while ((await get(valid)) !== 403) {
        if (performance.now() > deadline) throw new Error(`no ban within 30 s of ${threshold} refused tokens from 127.0.0.${100 + n}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      ms.push(performance.now() - crossed);
    } finally {
      agent.destroy();
    }
  }
  return { ms, requests };
}

function statusOf(agent: Agent, url: URL, bearer: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: url.hostname, port: url.port, path: '/users/1', headers: { authorization: `Bearer ${bearer}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}
