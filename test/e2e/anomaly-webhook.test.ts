/**
 * The alert webhook through the running product: refused tokens from one ip reach the worker,
 * its rule raises the alert, and a local receiver gets each state change of it once (opened,
 * banned on the first escalation, acked), signed with the secret of the worker's environment.
 */
import { expect } from 'chai';
import type { Alert } from '../../audit-worker/anomaly/alert-store.js';
import { verifyWebhookSignature } from '../../audit-worker/anomaly/webhook-signature.js';
import { openPostgres, type SqlClient } from '../../audit-worker/store/sql-client.js';
import { eventually } from '../helpers/net.js';
import { runCli } from '../helpers/processes.js';
import { RunningStack, STACK_ADMIN_TOKEN, STACK_ISSUER_YAML } from '../helpers/running-stack.js';
import { WebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver.js';
import { alertsOf, callFrom, refusedTokens } from './anomaly-alerts.test.js';

const SECRET = 'e2e-alert-webhook-secret-0123456789abcdef';

function webhookConfig(receiverUrl: string) {
  return (upstream: string) => `
issuers:
  - ${STACK_ISSUER_YAML}
routes:
  - { name: users, paths: [/users], upstream: "${upstream}", auth: required }
anomaly:
  rules:
    auth_failure_burst: { threshold: 5, window: 60, ban_ttl: 1 }
  ban: { factor: 1, max_ttl: 60 }
  webhook: { url: "${receiverUrl}", secret_env: ALERT_WEBHOOK_SECRET, timeout: 2s }
`;
}

describe('anomaly alert webhook (running stack)', function () {
  this.timeout(90_000);
  let receiver: WebhookReceiver;
  let stack: RunningStack;
  let sql: SqlClient;

  before(async () => {
    receiver = await WebhookReceiver.start();
    stack = await RunningStack.start(webhookConfig(receiver.url), {}, { workerEnv: { ALERT_WEBHOOK_SECRET: SECRET } });
    sql = await openPostgres(stack.pgUrl, stack.schema, { max: 1 });
  });

  after(async () => {
    await sql?.close();
    await stack?.stop();
    await receiver?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && stack) console.error(stack.output());
  });

  const sentFor = (alertId: string): ReceivedWebhook[] => receiver.received.filter((r) => r.body.alert.id === alertId);
  const outbox = async (alertId: string) =>
    (await sql.query<{ state: string; status: string }>(`SELECT state, status FROM audit_alert_webhooks WHERE alert_id = $1 ORDER BY created_at`, [alertId])).rows;
  const unbanned = (ip: string) => eventually(async () => ((await callFrom(stack, ip, '/users', stack.token())).status === 200 ? true : undefined), 10_000, `the ban of ${ip} to expire`);

  it('sends each state change of an alert once, signed: opened, banned on its first escalation only, acked on the first ack only', async () => {
    const ip = '127.0.0.60';
    await refusedTokens(stack, ip, 5);
    const crossed = performance.now();
    const opened = await eventually(() => receiver.received.find((r) => r.body.state === 'opened' && r.body.alert.subject === ip), 10_000, 'the opened webhook');
    const openedMs = performance.now() - crossed;
    const [alert] = await alertsOf(stack, { rule: 'auth_failure_burst', subject: ip });
    expect(opened.body.alert).to.include({ id: alert!.id, rule: 'auth_failure_burst', subject_kind: 'ip', subject: ip, count: 5, status: 'open', action: 'ban' });
    expect(opened.body.alert.ban_until).to.be.a('string');
    expect(Object.keys(opened.body.alert).sort()).to.deep.equal(Object.keys(alert!).sort());
    expect(opened.body.delivery_id).to.equal(opened.headers['x-gateway-delivery']);
    const signature = opened.headers['x-gateway-signature'] as string;
    expect(verifyWebhookSignature(SECRET, signature, opened.rawBody, 60)).to.equal(true);
    expect(verifyWebhookSignature('not-the-alert-webhook-secret-0123456789', signature, opened.rawBody, 60)).to.equal(false);
    expect(verifyWebhookSignature(SECRET, signature, opened.rawBody.replace('"open"', '"acked"'), 60)).to.equal(false);
    console.log(`      opened webhook received ${openedMs.toFixed(0)} ms after the crossing request`);

    // The 1 s ban expires; the incident continues: the second crossing bans again, an escalation.
    await unbanned(ip);
    await refusedTokens(stack, ip, 5);
    const banned = await eventually(() => sentFor(alert!.id).find((r) => r.body.state === 'banned'), 10_000, 'the banned webhook');
    expect(banned.body.alert).to.include({ id: alert!.id, count: 10, status: 'open' });
    expect(verifyWebhookSignature(SECRET, banned.headers['x-gateway-signature'] as string, banned.rawBody, 60)).to.equal(true);
    expect(banned.body.delivery_id).to.not.equal(opened.body.delivery_id);

    // A third crossing and a few more events of the same incident: stored, not sent.
    await unbanned(ip);
    await refusedTokens(stack, ip, 7);
    await eventually(async () => ((await alertsOf(stack, { subject: ip }))[0]?.count === 17 ? true : undefined), 10_000, 'the alert to count 17');
    expect((await outbox(alert!.id)).map((r) => r.state)).to.deep.equal(['opened', 'banned']);

    const ack = await fetch(`${stack.auditUrl}/v1/alerts/${alert!.id}/ack`, { method: 'POST', headers: { Authorization: `Bearer ${STACK_ADMIN_TOKEN}` } });
    expect(ack.status).to.equal(200);
    const ackedAlert = (await ack.json()) as Alert;
    const acked = await eventually(() => sentFor(alert!.id).find((r) => r.body.state === 'acked'), 10_000, 'the acked webhook');
    expect(acked.body.alert).to.deep.equal(ackedAlert);
    expect(verifyWebhookSignature(SECRET, acked.headers['x-gateway-signature'] as string, acked.rawBody, 60)).to.equal(true);

    const again = await runCli('cli/audit.js', ['ack', alert!.id], { AUDIT_URL: stack.auditUrl, ADMIN_TOKEN: STACK_ADMIN_TOKEN });
    expect(again.code, again.stderr).to.equal(0);
    expect(await outbox(alert!.id)).to.deep.equal([
      { state: 'opened', status: 'delivered' },
      { state: 'banned', status: 'delivered' },
      { state: 'acked', status: 'delivered' },
    ]);
    expect(sentFor(alert!.id).map((r) => r.body.state)).to.deep.equal(['opened', 'banned', 'acked']);
    expect(stack.process('audit-worker').output.join('')).to.not.include(SECRET);
  });

  it('the worker refuses to start when the secret variable is unset or shorter than 32 bytes, naming it', async () => {
    const env = { ...stack.env, AUDIT_PORT: '0', ADMIN_TOKEN: STACK_ADMIN_TOKEN };
    const unset = await runCli('audit-worker/main.js', [], env);
    expect(unset.code).to.equal(1);
    expect(unset.stderr).to.include('cannot start: anomaly.webhook.secret_env: environment variable ALERT_WEBHOOK_SECRET is not set');
    const short = await runCli('audit-worker/main.js', [], { ...env, ALERT_WEBHOOK_SECRET: 'too-short-a-secret' });
    expect(short.code).to.equal(1);
    expect(short.stderr).to.include('anomaly.webhook.secret_env: ALERT_WEBHOOK_SECRET must hold at least 32 bytes');
    expect(short.stderr).to.not.include('too-short-a-secret');
  });
});
