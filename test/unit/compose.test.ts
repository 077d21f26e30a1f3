/**
 * docker-compose.yml runs what `npm start` runs: the same package.json scripts, and the same
 * variables (PostgreSQL replacing the embedded store), each one a variable its process reads.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

const compose = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, ComposeService> };
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

  it('keeps the audit query API off public interfaces', () => {
    const ports = (compose.services['audit-worker'] as ComposeService & { ports?: string[] }).ports ?? [];
    expect(ports.every((p) => p.startsWith('127.0.0.1:'))).to.equal(true);
  });

  it('is a valid compose file for docker-compose', function () {
    const check = spawnSync('docker-compose', ['-f', join(PROJECT_ROOT, 'docker-compose.yml'), 'config', '-q'], {
      env: { ...process.env, DEMO_JWT_SECRET: 'x'.repeat(32), ADMIN_TOKEN: 'x'.repeat(16) },
      encoding: 'utf8',
    });
    if (check.error) throw new Error(`docker-compose is not installed (.ci/run installs it): ${check.error.message}`);
    expect(check.status, check.stderr).to.equal(0);
  });
});
