/** LiveConfig in process: SIGHUP re-reads the file; what it refuses and why; the hash ignores comments. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { configHash, LiveConfig } from '../../common/config/live-config.js';
import { loadConfig } from '../../common/config/load.js';
import type { GatewayConfig } from '../../common/config/schema.js';
import { captureLogger } from '../helpers/capture-logger.js';

const yaml = (limit: number, comment = '') => `${comment}\nroutes: [{ name: r, paths: [/r], upstream: "http://127.0.0.1:1", rate_limit: { hour: ${limit} } }]\ngateway: { check_deadline_ms: 200 }\n`;

describe('LiveConfig', () => {
  let dir: string;
  let file: string;
  let live: LiveConfig | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'live-config-'));
    file = join(dir, 'gateway.yml');
    writeFileSync(file, yaml(1));
  });
  afterEach(() => {
    live?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('re-reads the file on SIGHUP and applies a valid change at once', () => {
    const applied: GatewayConfig[] = [];
    const { logger, lines } = captureLogger();
    live = new LiveConfig({ file, logger, restartOnly: [], apply: (config) => void applied.push(config) }, loadConfig(file));
    live.start();
    writeFileSync(file, yaml(7));
    process.emit('SIGHUP', 'SIGHUP');
    expect(applied.map((c) => c.routes[0]!.rate_limit!.hour)).to.deep.equal([7]);
    expect(live.hash).to.equal(configHash(applied[0]!));
    expect(lines.find((l) => l.code === 'config_applied')).to.include({ trigger: 'SIGHUP', config_hash: live.hash });
  });

  it('keeps the old config for an invalid file, a restart-only change, or an apply that throws', () => {
    const { logger, lines } = captureLogger();
    let fail = false;
    live = new LiveConfig({ file, logger, restartOnly: ['gateway.check_deadline_ms'], apply: () => { if (fail) throw new Error('boom'); } }, loadConfig(file));
    const first = live.hash;
    writeFileSync(file, yaml(-1));
    expect(live.reload('test')).to.equal(false);
    expect(lines.find((l) => l.code === 'config_refused')?.problems).to.deep.equal(['routes.0.rate_limit.hour: Too small: expected number to be >0']);
    writeFileSync(file, yaml(1).replace('200', '150'));
    expect(live.reload('test')).to.equal(false);
    expect(lines.find((l) => l.code === 'config_needs_restart')?.keys).to.deep.equal(['gateway.check_deadline_ms']);
    fail = true;
    writeFileSync(file, yaml(3));
    expect(live.reload('test')).to.equal(false);
    expect(lines.find((l) => l.code === 'config_apply_failed')?.error).to.equal('boom');
    expect(live.hash).to.equal(first);
  });

  it('hashes the parsed config: comments and layout do not change it, a value does', () => {
    writeFileSync(file, yaml(1, '# a comment'));
    const commented = configHash(loadConfig(file));
    writeFileSync(file, yaml(1));
    expect(configHash(loadConfig(file))).to.equal(commented);
    writeFileSync(file, yaml(2));
    expect(configHash(loadConfig(file))).to.not.equal(commented);
  });
});
