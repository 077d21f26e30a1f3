/**
 * Active health checks of a pool (`health.probe`): every `interval_s`, a GET of `path` on each
 * target, without keep-alive, within `timeout_ms`. A 2xx or 3xx brings a target back at once; any
 * other answer, or none, counts as a failure like a failed request.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { UpstreamConfig } from '../../common/config/schema.js';
import type { Target, UpstreamPool } from './pool.js';

type ProbeConfig = NonNullable<UpstreamConfig['health']['probe']>;

export class Prober {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly probe: ProbeConfig,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.pool.targets.forEach((t) => void this.check(t)), this.probe.interval_s * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Probes one target and reports the outcome to the pool; resolves whether it was healthy. */
  check(target: Target): Promise<boolean> {
    const url = new URL(target.url);
    const path = `${url.pathname.replace(/\/+$/, '')}${this.probe.path}`;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const req = request({ host: url.hostname, port: url.port, path, method: 'GET', timeout: this.probe.timeout_ms, headers: { connection: 'close', 'user-agent': 'gateway-health-probe' } }, (res) => {
        res.resume();
        const healthy = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400;
        if (healthy) this.pool.succeeded(target);
        else this.pool.failed(target);
        resolve(healthy);
      });
      req.on('timeout', () => req.destroy(new Error('probe timed out')));
      req.on('error', () => {
        this.pool.failed(target);
        resolve(false);
      });
      req.end();
    });
  }
}
