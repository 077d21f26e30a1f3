/**
 * docker-compose.yml runs what `npm start` runs: the same package.json scripts, and the same
 * variables (PostgreSQL replacing the embedded store), each one a variable its process reads.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { gatewayEnvSchema, sidecarEnvSchema, workerEnvSchema } from '../../common/env.js';
import { PROJECT_ROOT } from '../../common/paths.js';
import { LOCAL_ONLY_VARIABLES, stackServices, type StackService } from '../../scripts/stack.js';

interface ComposeService {
  command: string[];
  environment?: Record<string, string>;
}

const compose = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const scripts = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
const configText = readFileSync(join(PROJECT_ROOT, 'config/gateway.yml'), 'utf8');
/** Variables the example config reads: secret_env names and ${VAR} references. */
const configVariables = [...configText.matchAll(/secret_env: *([A-Z_][A-Z0-9_]*)|\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => (m[1] ?? m[2]) as string);

const READS: Record<StackService['name'], string[]> = {
  'demo-upstream': ['DEMO_UPSTREAM_PORT', 'DEMO_UPSTREAM_HOST'],
  'auth-sidecar': [...Object.keys(sidecarEnvSchema.shape), ...configVariables],
  'audit-worker': Object.keys(workerEnvSchema.shape),
  gateway: [...Object.keys(gatewayEnvSchema.shape), ...configVariables],
};

const services = stackServices({
  redisUrl: 'redis://127.0.0.1:6379',
  adminToken: 'x'.repeat(16),
  demoJwtSecret: 'x'.repeat(32),
  signingKeySecret: 'y'.repeat(32),
  config: 'config/gateway.yml',
  gatewayPort: 8080,
  sidecarPort: 50051,
  auditPort: 8090,
  upstreamPort: 3001,
  dataDir: 'data',
  logLevel: 'info',
});

describe('docker-compose.yml', () => {
  for (const service of services) {
    describe(service.name, () => {
      const composed = compose.services[service.name];

      it('runs the package.json script npm start runs', () => {
        expect(composed?.command).to.deep.equal(['npm', 'run', service.script]);
        expect(scripts[service.script]).to.match(/^node dist\//);
      });

      it('sets every variable npm start sets', () => {
        const local = Object.keys(service.env).filter((v) => !(LOCAL_ONLY_VARIABLES as readonly string[]).includes(v));
        expect(Object.keys(composed?.environment ?? {})).to.include.members(local);
      });

      it('sets only variables the process reads', () => {
        for (const variable of Object.keys(composed?.environment ?? {})) expect(READS[service.name], variable).to.include(variable);
      });
    });
  }

  type Service = ComposeService & {
    ports?: string[];
    container_name?: string;
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
    image?: string;
    volumes?: string[];
    networks?: Record<string, { ipv4_address?: string }> | string[];
  };
  const all = compose.services as Record<string, Service>;

  it('publishes only the balancer on a public port, the audit API on loopback, and no fixed name', () => {
    for (const [name, service] of Object.entries(all)) {
      expect(service.container_name, name).to.equal(undefined);
      const ports = service.ports ?? [];
      if (name === 'balancer') expect(ports).to.deep.equal(['8080:8080']);
      else if (name === 'audit-api') expect(ports).to.deep.equal(['127.0.0.1:8090:8090']);
      else expect(ports, name).to.deep.equal([]);
    }
  });

  it('has a health check on every service, and orders start-up on health', () => {
    for (const [name, service] of Object.entries(all)) {
      expect(service.healthcheck?.test, name).to.be.an('array').that.is.not.empty;
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(all[dependency], `${name} depends on ${dependency}`).to.not.equal(undefined);
        expect(condition, `${name} -> ${dependency}`).to.equal(all[dependency]!.healthcheck ? 'service_healthy' : 'service_started');
      }
    }
    // The checks run what the image has (test/integration/healthcheck.test.ts runs the script).
    // Each process's readiness on its status port (README: Health and metrics).
    for (const [name, port] of [['auth-sidecar', 9181], ['audit-worker', 9182], ['gateway', 9180]] as const) {
      expect(all[name]!.healthcheck!.test, name).to.deep.equal(['CMD', 'node', 'dist/scripts/healthcheck.js', 'http', `http://127.0.0.1:${port}/readyz`]);
    }
  });

  it('runs Redis with AOF fsynced on every write and no eviction', () => {
    const command = (all.redis as Service & { command: string[] }).command.join(' ');
    expect(command).to.include('--appendonly yes').and.to.include('--appendfsync always').and.to.include('--maxmemory-policy noeviction');
  });

  it('spreads over every gateway replica behind a balancer whose address the gateways trust, and over every sidecar', () => {
    const haproxy = readFileSync(join(PROJECT_ROOT, 'deploy/haproxy.cfg'), 'utf8');
    expect(haproxy).to.match(/^\s*server-template gateway \d+ gateway:8080$/m);
    expect(haproxy).to.match(/resolvers docker\s+nameserver dns 127\.0\.0\.11:53/);
    expect(haproxy).to.match(/option httpchk GET \/readyz/);
    expect(haproxy).to.match(/default-server .*check port 9180 /);
    expect(all.balancer!.volumes).to.deep.equal(['./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro']);
    const address = (all.balancer!.networks as Record<string, { ipv4_address: string }>).internal!.ipv4_address;
    expect(all.gateway!.environment!.TRUSTED_PROXIES).to.equal(address);
    expect(all.gateway!.environment!.SIDECAR_ADDR).to.equal(`dns:///auth-sidecar:${all['auth-sidecar']!.environment!.SIDECAR_PORT}`);
    expect(all.gateway!.environment!.GATEWAY_PORT).to.equal('8080');
  });

  it('takes every secret from the environment, each one documented in .env.example', () => {
    const text = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
    const required = [...text.matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]!);
    const example = readFileSync(join(PROJECT_ROOT, '.env.example'), 'utf8');
    const documented = [...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!);
    expect(new Set(required)).to.deep.equal(new Set(['DEMO_JWT_SECRET', 'SIGNING_KEY_SECRET', 'ADMIN_TOKEN', 'POSTGRES_PASSWORD']));
    expect(documented).to.have.members([...new Set(required)]);
    expect(readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8').split('\n')).to.include('.env');
  });

  it('builds an image with every file the processes read at run time, as a non-root user', () => {
    const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).to.match(/^USER node$/m);
    expect(dockerfile).to.include('npm prune --omit=dev');
    for (const [, source] of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) expect(existsSync(join(PROJECT_ROOT, source!)), source).to.equal(true);
    // Files found with join(PROJECT_ROOT, ...): dist/, proto/, config/ and package.json (npm
    // start's scripts) are copied whole, and every .lua under auth-sidecar/ and audit-worker/ by the find step.
    expect(dockerfile).to.include("find auth-sidecar audit-worker -name '*.lua'");
    const sources = spawnSync('grep', ['-rhoE', "join\\(PROJECT_ROOT, '[^']+'", 'auth-sidecar', 'audit-worker', 'gateway', 'common', 'scripts', '--include=*.ts'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).stdout;
    const read = [...sources.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
    expect(read).to.include('auth-sidecar/limiter/decide.lua');
    for (const file of read) expect(file, file).to.match(/^(proto|config|package\.json)$|^dist\/|^(auth-sidecar|audit-worker)\/.*\.lua$/);
  });
});
