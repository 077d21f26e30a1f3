/**
 * `npm start`: the whole stack on this machine. Uses Redis at REDIS_URL, or starts a private
 * redis-server when nothing answers there; runs the demo upstream, the sidecar, the worker and
 * the gateway with the example config; Ctrl-C stops everything it started.
 *
 * `npm run start:scaled` (`--scaled`): the same with 3 gateways behind a local balancer, 2
 * sidecars and 2 workers sharing the PostgreSQL store at AUDIT_DB_URL (scaled-stack.ts). A
 * replica that exits is reported and the others go on, as replicas do.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { withDemoDefaults } from '../common/demo.js';
import { isListening, waitForPort } from '../common/net.js';
import { PROJECT_ROOT } from '../common/paths.js';
import { localBalancer } from './local-balancer.js';
import { DEFAULT_REPLICAS, scaledServices } from './scaled-stack.js';
import { stackServices, type StackService, type StackSettings } from './stack.js';

const SCALED = process.argv.includes('--scaled');
const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;
/** Set once every process is up: from then on a scaled stack outlives a replica's exit. */
let up = false;

async function main(): Promise<void> {
  const env = withDemoDefaults(process.env);
  const dataDir = env.DATA_DIR ?? 'data';
  mkdirSync(dataDir, { recursive: true });
  // Through Sentinel or a Cluster the processes find Redis themselves; else one must answer at REDIS_URL.
  const foundByThemselves = env.REDIS_SENTINELS || env.REDIS_CLUSTER_NODES;
  const redisUrl = foundByThemselves ? (env.REDIS_URL ?? 'redis://127.0.0.1:6379') : await ensureRedis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const adminToken = env.ADMIN_TOKEN ?? newAdminToken(dataDir);
  const settings: StackSettings = {
    redisUrl,
    adminToken,
    demoJwtSecret: env.DEMO_JWT_SECRET as string,
    signingKeySecret: env.SIGNING_KEY_SECRET as string,
    config: env.GATEWAY_CONFIG ?? 'config/gateway.yml',
    gatewayPort: Number(env.GATEWAY_PORT ?? 8080),
    sidecarPort: Number(env.SIDECAR_PORT ?? 50051),
    auditPort: Number(env.AUDIT_PORT ?? 8090),
    upstreamPort: Number(env.DEMO_UPSTREAM_PORT ?? 3001),
    dataDir,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
  if (SCALED) return startScaled(settings, env);
  const services = stackServices(settings);
  for (const service of services) {
    if (await isListening(service.port)) throw new Error(`port ${service.port} for ${service.name} is already taken`);
    run(service.name, scriptCommand(service.script), { ...process.env, ...service.env });
    await waitForPort(service.port, 60_000);
  }
  const gateway = services.at(-1) as StackService;
  const audit = services[2] as StackService;
  console.log(`
  The stack is up.
    gateway       http://127.0.0.1:${gateway.port}
    audit API     http://127.0.0.1:${audit.port}   (admin token in ${env.ADMIN_TOKEN ? '$ADMIN_TOKEN' : join(dataDir, 'admin-token')})
    redis         ${redisShown(env, redisUrl)}   (the CLIs read the same variables)
  Try:  TOKEN=$(npm run -s admin -- token --sub alice --groups customers)
        curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:${gateway.port}/users/1
  Ctrl-C stops everything.
`);
}

async function startScaled(settings: StackSettings, env: NodeJS.ProcessEnv): Promise<void> {
  if (!env.AUDIT_DB_URL) throw new Error('start:scaled runs 2 audit workers, which share a PostgreSQL store: set AUDIT_DB_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)');
  const gatewayPorts = Array.from({ length: DEFAULT_REPLICAS.gateways }, (_, i) => settings.gatewayPort + 1 + i);
  // START_BALANCER=dev uses the development forwarder even where nginx is installed.
  const balancer = localBalancer(settings.gatewayPort, gatewayPorts, settings.dataDir, env.START_BALANCER === 'dev' ? false : undefined);
  const services = scaledServices({
    ...settings,
    auditDbUrl: env.AUDIT_DB_URL,
    auditDbSchema: env.AUDIT_DB_SCHEMA,
    balancerAddress: balancer.forwardsClient ? '127.0.0.1' : undefined,
  });
  for (const port of [settings.gatewayPort, ...services.map((s) => s.port)]) {
    if (await isListening(port)) throw new Error(`port ${port} is already taken`);
  }
  // Replicas of a kind start together; kinds in order (the gateways need the sidecars up).
  for (const kind of ['demo-upstream', 'auth-sidecar', 'audit-worker', 'gateway'] as const) {
    const replicas = services.filter((s) => s.kind === kind);
    for (const service of replicas) run(service.name, scriptCommand(service.script), { ...process.env, ...service.env });
    await Promise.all(replicas.map((s) => waitForPort(s.port, 60_000)));
  }
  run(balancer.name, balancer.command, process.env);
  await waitForPort(settings.gatewayPort, 30_000);
  up = true;
  console.log(`
  The scaled stack is up (${services.length + 1} processes).
    balancer      http://127.0.0.1:${settings.gatewayPort}   (${balancer.name === 'nginx' ? 'nginx' : 'dev-balancer: a TCP forwarder FOR DEVELOPMENT ONLY; install nginx for the real one'})
    gateways      ${gatewayPorts.map((p) => `127.0.0.1:${p}`).join(', ')}
    sidecars      ${services.filter((s) => s.kind === 'auth-sidecar').map((s) => `127.0.0.1:${s.port}`).join(', ')}
    audit API     http://127.0.0.1:${settings.auditPort}   (workers' APIs: ${services.filter((s) => s.kind === 'audit-worker').map((s) => s.port).join(', ')}; admin token in ${env.ADMIN_TOKEN ? '$ADMIN_TOKEN' : join(settings.dataDir, 'admin-token')})
    redis         ${redisShown(env, settings.redisUrl)};  store ${env.AUDIT_DB_URL.replace(/\/\/[^@]*@/, '//')}
  Ctrl-C stops everything.
`);
}

/** Where the processes find Redis, for the banner. */
function redisShown(env: NodeJS.ProcessEnv, url: string): string {
  if (env.REDIS_CLUSTER_NODES) return `cluster via ${env.REDIS_CLUSTER_NODES}`;
  if (env.REDIS_SENTINELS) return `sentinels ${env.REDIS_SENTINELS}`;
  return url;
}

/**
 * Uses the Redis at `url` if it answers; else starts a private redis-server listening exactly
 * there (loopback only), so the CLIs reach it with the same REDIS_URL.
 */
async function ensureRedis(url: string): Promise<string> {
  const { hostname, port: portText } = new URL(url);
  const port = Number(portText || 6379);
  if (await isListening(port, hostname)) return url;
  if (!['127.0.0.1', 'localhost'].includes(hostname)) throw new Error(`nothing answers at REDIS_URL=${url}`);
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(`nothing answers at REDIS_URL=${url} and redis-server is not on PATH: start Redis or set REDIS_URL`);
  }
  run('redis', ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], process.env);
  await waitForPort(port);
  return url;
}

function newAdminToken(dataDir: string): string {
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dataDir, 'admin-token'), token, { mode: 0o600 });
  return token;
}

/** `node dist/x.js` from package.json's script, run with this Node binary. */
function scriptCommand(script: string): string[] {
  const scripts = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
  const [command, ...args] = (scripts[script] ?? '').split(' ');
  if (command !== 'node') throw new Error(`package.json script ${script} must be "node <file>"`);
  return [process.execPath, ...args.map((a) => join(PROJECT_ROOT, a))];
}

function run(name: string, [command, ...args]: string[], env: NodeJS.ProcessEnv): void {
  const child = spawn(command as string, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  if (SCALED) console.log(`[start] ${name} pid ${child.pid}`);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
  }
  child.once('exit', (code, signal) => {
    if (stopping) return;
    if (SCALED && up) return console.error(`[${name}] exited (${signal ?? code}); the other replicas go on`);
    console.error(`[${name}] exited (${signal ?? code}); stopping the stack`);
    void stop(1);
  });
}

async function stop(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Reverse start order: the gateway flushes its audit events while Redis and the worker still run.
  for (const { child } of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  process.exit(exitCode);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
main().catch((err: Error) => {
  console.error(`npm start: ${err.message}`);
  void stop(1);
});
