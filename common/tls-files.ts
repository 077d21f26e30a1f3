/**
 * Certificate files as the processes read them: paths relative to the config file, read with an
 * error naming the config key, and watched so a renewed certificate is served without a restart.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export class TlsFileError extends Error {
  readonly code = 'tls_file_unreadable';
}

/** Reads `file` (relative to the config file); the error names `key`, e.g. gateway.tls.cert_file. */
export function readPem(configFile: string, key: string, file: string): Buffer {
  const path = resolve(dirname(configFile), file);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsFileError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Calls `changed` (debounced) when any of the files is written or replaced. Watches their folders,
 * not the files: a certificate renewed by renaming a new file over the old one (certbot, a
 * Kubernetes secret) replaces the inode a file watch would follow.
 */
export function watchFiles(configFile: string, files: readonly string[], changed: () => void, debounceMs = 200): () => void {
  const paths = files.map((f) => resolve(dirname(configFile), f));
  const names = new Map<string, Set<string>>();
  for (const path of paths) {
    const dir = dirname(path);
    names.set(dir, (names.get(dir) ?? new Set()).add(basename(path)));
  }
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [...names].map(([dir, wanted]) =>
    watch(dir, (_event, name) => {
      // Kubernetes swaps a `..data` symlink: any change in the folder may be ours.
      if (name !== null && !wanted.has(name.toString()) && !name.toString().startsWith('..')) return;
      clearTimeout(timer);
      timer = setTimeout(changed, debounceMs);
    }),
  );
  for (const w of watchers) w.unref();
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
