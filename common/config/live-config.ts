/**
 * The config file, live: read at start, then again whenever the file changes (its folder is
 * watched, so an editor's or Kubernetes' rename-over is seen) or the process gets SIGHUP. A
 * valid file is handed to `apply` whole; an invalid one is refused with its errors (each naming
 * the key's path) and the old config keeps serving; so is one that changes a key this process
 * can only take at start (`restartOnly`), naming those keys. Every process exposes the active
 * config's hash: a hash of the parsed config, so comments and formatting do not change it.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../logger.js';
import { ConfigError, loadConfig } from './load.js';
import type { GatewayConfig } from './schema.js';

/** How long after the last change event the file is read (an editor writes in several steps). */
const SETTLE_MS = 100;

export function configHash(config: GatewayConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}

/** The top-level keys (or `section.key` paths) of `restartOnly` whose values differ between two configs. */
export function changedKeys(before: GatewayConfig, after: GatewayConfig, paths: readonly string[]): string[] {
  const at = (config: GatewayConfig, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
  return paths.filter((path) => JSON.stringify(at(before, path)) !== JSON.stringify(at(after, path)));
}

export interface LiveConfigOptions {
  file: string;
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Config paths this process reads only at start: a file changing one is refused until a restart. */
  restartOnly: readonly string[];
  /** Takes a new valid config; in-flight work finishes under the old one. */
  apply: (config: GatewayConfig, hash: string) => void;
}

export class LiveConfig {
  private active: { config: GatewayConfig; hash: string };
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onHangup = (): void => void this.reload('SIGHUP');

  constructor(private readonly options: LiveConfigOptions, initial: GatewayConfig) {
    this.active = { config: initial, hash: configHash(initial) };
  }

  get config(): GatewayConfig {
    return this.active.config;
  }

  get hash(): string {
    return this.active.hash;
  }

  start(): void {
    const name = basename(this.options.file);
    this.watcher = watch(dirname(this.options.file), (_event, changed) => {
      // Kubernetes swaps a `..data` symlink in a mounted config map: any such change may be ours.
      if (changed !== null && changed.toString() !== name && !changed.toString().startsWith('..')) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload('file changed'), SETTLE_MS);
    });
    this.watcher.unref();
    process.on('SIGHUP', this.onHangup);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    process.off('SIGHUP', this.onHangup);
  }

  /** Reads the file again; applies it when valid, new, and free of restart-only changes. Returns whether it was applied. */
  reload(why: string): boolean {
    const { file, logger } = this.options;
    let config: GatewayConfig;
    try {
      config = loadConfig(file, this.options.env);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      logger.error('config refused: the old one keeps serving', { code: 'config_refused', trigger: why, file, problems, config_hash: this.active.hash });
      return false;
    }
    const hash = configHash(config);
    if (hash === this.active.hash) return false;
    const restart = changedKeys(this.active.config, config, this.options.restartOnly);
    if (restart.length > 0) {
      logger.error('config refused: it changes keys this process reads only at start; restart it to apply them', { code: 'config_needs_restart', trigger: why, file, keys: restart, config_hash: this.active.hash });
      return false;
    }
    try {
      this.options.apply(config, hash);
    } catch (err) {
      logger.error('config refused: applying it failed, the old one keeps serving', { code: 'config_apply_failed', trigger: why, file, error: (err as Error).message, config_hash: this.active.hash });
      return false;
    }
    logger.info('config applied', { code: 'config_applied', trigger: why, file, config_hash: hash, previous_hash: this.active.hash });
    this.active = { config, hash };
    return true;
  }
}
