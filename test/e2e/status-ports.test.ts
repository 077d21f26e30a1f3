/**
 * Each process's status port through the built processes: /healthz, /readyz flipping as Redis
 * and the sidecar go away and come back, /metrics holding the exact counts of known traffic with
 * bounded labels, the fail-open count, and readiness turned off at the start of a drain.
 */
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { UPSTREAM_DELAY_HEADER } from '../helpers/recording-upstream.js';
import { RunningStack, STACK_ISSUER_YAML } from '../helpers/running-stack.js';

/** The value of one sample of a Prometheus text exposition: `name{labels}` exactly as written; undefined if absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('status ports: health, readiness, metrics', function () {
  this.timeout(120_000);
  let stack: RunningStack;

  before(async () => {
    stack = await RunningStack.start(
      (upstream) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}" }
  - { name: open, paths: [/open], upstream: "${upstream}", auth: none, rate_limit: { by: ip, hour: 1000 } }
gateway: { check_deadline_ms: 1000 }
`,
    );
  });

  after(async () => {
    await stack?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const metrics = async (url: string): Promise<string> => {
    const res = await fetch(`${url}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  const ready = async (url: string): Promise<{ status: number; body: { status: string; checks?: Record<string, boolean>; config_hash?: string } }> => {
    const res = await fetch(`${url}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; checks?: Record<string, boolean>; config_hash?: string } };
  };

  it('/healthz says alive, /readyz ready with every check, on each process; other paths 404, other methods 405', async () => {
    for (const url of Object.values(stack.statusUrl)) {
      expect(await (await fetch(`${url}/healthz`)).json()).to.deep.equal({ status: 'alive' });
      // Listening is not ready: the gateway's sidecar channel connects just after.
      await eventually(async () => ((await ready(url)).status === 200 ? true : undefined), 10_000, `${url} ready`);
      const { body } = await ready(url);
      expect(body.status).to.equal('ready');
      expect(Object.values(body.checks ?? {}).every(Boolean)).to.equal(true);
      expect((await fetch(`${url}/nope`)).status).to.equal(404);
      expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).to.equal(405);
    }
    expect((await ready(stack.statusUrl.gateway)).body.checks).to.deep.equal({ sidecar: true, audit_queue: true });
    expect((await ready(stack.statusUrl.gateway)).body.config_hash).to.match(/^[0-9a-f]{16}$/);
    expect((await ready(stack.statusUrl.sidecar)).body.checks).to.deep.equal({ redis: true });
    expect((await ready(stack.statusUrl.worker)).body.checks).to.deep.equal({ redis: true, store: true });
  });

  it('metrics hold the exact counts of known traffic, by route, decision, reason and status class, with no path or id as a label', async () => {
    const token = stack.token({ sub: 'metered' });
    const before = await metrics(stack.statusUrl.gateway);
    const allowedSeries = 'gateway_requests_total{route="users",decision="allow",reason="",status_class="2xx"}';
    const deniedSeries = 'gateway_requests_total{route="users",decision="deny",reason="token_missing",status_class="4xx"}';
    const noRouteSeries = 'gateway_requests_total{route="(none)",decision="deny",reason="no_route",status_class="4xx"}';
    const base = (series: string) => sample(before, series) ?? 0;
    const [allowedBefore, deniedBefore, noRouteBefore] = [base(allowedSeries), base(deniedSeries), base(noRouteSeries)];
    const sidecarBefore = await metrics(stack.statusUrl.sidecar);
    const decidedBefore = sample(sidecarBefore, 'sidecar_decisions_total{decision="allow",reason=""}') ?? 0;
    const storedBefore = sample(await metrics(stack.statusUrl.worker), 'worker_events_stored_total') ?? 0;

    for (let i = 0; i < 7; i++) expect((await stack.call(`/users/secret-path-${i}`, { Authorization: `Bearer ${token}` })).status).to.equal(200);
    for (let i = 0; i < 3; i++) expect((await stack.call('/users/x')).status).to.equal(401);
    expect((await stack.call('/nowhere-9f3a')).status).to.equal(404);

    const after = await metrics(stack.statusUrl.gateway);
    expect(sample(after, allowedSeries)).to.equal(allowedBefore + 7);
    expect(sample(after, deniedSeries)).to.equal(deniedBefore + 3);
    expect(sample(after, noRouteSeries)).to.equal(noRouteBefore + 1);
    expect(sample(after, 'gateway_requests_in_flight')).to.equal(0);
    expect(sample(after, 'gateway_request_duration_seconds_count{route="users"}')).to.be.at.least(10);
    expect(sample(after, 'gateway_upstream_duration_seconds_count{route="users"}')).to.be.at.least(7);
    expect(sample(after, 'gateway_sidecar_check_duration_seconds_count')).to.be.at.least(10);
    expect(sample(after, 'process_resident_memory_bytes')).to.be.above(0);
    // Bounded labels: no path, request id, token or address in any series.
    for (const leak of ['secret-path', 'nowhere-9f3a', 'st-', '127.0.0.1', 'metered']) expect(after).to.not.include(leak);
    expect(sample(await metrics(stack.statusUrl.sidecar), 'sidecar_decisions_total{decision="allow",reason=""}')).to.equal(decidedBefore + 7);
    await eventually(async () => (sample(await metrics(stack.statusUrl.worker), 'worker_events_stored_total') === storedBefore + 11 ? true : undefined), 20_000, '11 more events stored');
    const worker = await metrics(stack.statusUrl.worker);
    expect(sample(worker, 'worker_event_lag_seconds_count')).to.be.at.least(11);
    expect(sample(worker, 'worker_queue_jobs{state="failed"}')).to.equal(0);
    expect(sample(await metrics(stack.statusUrl.gateway), 'gateway_audit_batches_published_total')).to.be.at.least(1);
  });

  it('/readyz turns 503 naming Redis on every process while Redis is down, ready again once it is back; fail-open requests are counted', async () => {
    const failOpen = 'gateway_fail_open_total{route="open"}';
    const openBefore = sample(await metrics(stack.statusUrl.gateway), failOpen) ?? 0;
    await stack.redis.stop();
    try {
      await eventually(async () => ((await ready(stack.statusUrl.sidecar)).status === 503 ? true : undefined), 10_000, 'the sidecar not ready');
      expect((await ready(stack.statusUrl.sidecar)).body).to.deep.include({ status: 'not_ready', checks: { redis: false } });
      await eventually(async () => ((await ready(stack.statusUrl.gateway)).body.checks?.audit_queue === false ? true : undefined), 10_000, 'the gateway not ready');
      expect((await ready(stack.statusUrl.gateway)).status).to.equal(503);
      await eventually(async () => ((await ready(stack.statusUrl.worker)).body.checks?.redis === false ? true : undefined), 10_000, 'the worker not ready');
      const open = await stack.call('/open/a');
      expect(open.status).to.equal(200);
      expect(sample(await metrics(stack.statusUrl.gateway), failOpen)).to.equal(openBefore + 1);
      expect(sample(await metrics(stack.statusUrl.sidecar), 'sidecar_fail_open_total{route="open"}')).to.be.at.least(1);
    } finally {
      await stack.redis.resume();
    }
    for (const url of Object.values(stack.statusUrl)) await eventually(async () => ((await ready(url)).status === 200 ? true : undefined), 20_000, `${url} ready again`);
  });

  it('/readyz of the gateway names the sidecar while it is gone, and is ready once it is back', async () => {
    await stack.process('auth-sidecar').kill();
    try {
      await eventually(async () => ((await ready(stack.statusUrl.gateway)).body.checks?.sidecar === false ? true : undefined), 10_000, 'the gateway to see the sidecar gone');
      expect((await ready(stack.statusUrl.gateway)).status).to.equal(503);
    } finally {
      await stack.restart('auth-sidecar');
    }
    await eventually(async () => ((await ready(stack.statusUrl.gateway)).status === 200 ? true : undefined), 20_000, 'the gateway ready again');
  });

  it('turns not ready (draining) at the start of a stop, while a request is still in flight', async () => {
    const slow = stack.call('/open/slow', { [UPSTREAM_DELAY_HEADER]: '1500' });
    await eventually(async () => (sample(await metrics(stack.statusUrl.gateway), 'gateway_requests_in_flight') === 1 ? true : undefined), 5_000, 'the slow request in flight');
    const gateway = stack.process('gateway');
    const exited = gateway.kill('SIGTERM');
    await eventually(async () => {
      const answer = await ready(stack.statusUrl.gateway).catch(() => undefined);
      return answer?.status === 503 && answer.body.status === 'draining' ? true : undefined;
    }, 1_000, 'readiness to say draining');
    // Still serving what it had: the slow request ends normally, then the process exits cleanly.
    expect((await slow).status).to.equal(200);
    expect(await exited).to.equal(0);
    await stack.restart('gateway');
  });
});
