/**
 * An HTTPS server from certificate files (paths relative to the config file), re-reading them
 * when they change: a renewed certificate is served to new connections without a restart. A pair
 * that does not load (a half-written renewal) is logged and the previous one kept.
 */
import type { RequestListener, ServerOptions } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Logger } from './logger.js';
import { readPem, watchFiles } from './tls-files.js';

export interface TlsFiles {
  cert_file: string;
  key_file: string;
  min_version: 'TLSv1.2' | 'TLSv1.3';
}

/** `key`: the config key of `tls`, e.g. gateway.tls, named in errors. */
export function reloadingHttpsServer(options: ServerOptions, listener: RequestListener, tls: TlsFiles, configFile: string, key: string, logger: Logger): { server: Server; unwatch: () => void } {
  const context = () => ({ cert: readPem(configFile, `${key}.cert_file`, tls.cert_file), key: readPem(configFile, `${key}.key_file`, tls.key_file), minVersion: tls.min_version });
  const server = createServer({ ...options, ...context() }, listener);
  const unwatch = watchFiles(configFile, [tls.cert_file, tls.key_file], () => {
    try {
      server.setSecureContext(context());
      logger.info('tls certificate reloaded', { code: 'tls_reloaded', config_key: key });
    } catch (err) {
      logger.error('tls certificate not reloaded: the previous one stays', { code: 'tls_reload_failed', config_key: key, error: (err as Error).message });
    }
  });
  return { server, unwatch };
}
