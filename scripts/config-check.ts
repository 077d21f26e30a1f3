/**
 * `npm run config:check FILE`: validates a config file exactly as the processes do (the same
 * schema, the same `${VAR}` expansion from this environment) without starting anything. Prints
 * `ok <hash>` (the hash every process shows for it on /readyz) and exits 0, or each problem with
 * its key's path and exits 1; 2 without a file.
 */
import { configHash } from '../common/config/live-config.js';
import { ConfigError, loadConfig } from '../common/config/load.js';

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error('usage: npm run config:check FILE');
  process.exit(2);
}
try {
  const config = loadConfig(file);
  console.log(`ok ${file}: ${config.routes.length} routes, config hash ${configHash(config)}`);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
