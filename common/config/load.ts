import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';

/** A config file that cannot be used; the message names the file and the path of each bad key. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly file: string, readonly problems: string[]) {
    super(`invalid config ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses and validates YAML text; `${VAR}` and `${VAR:-default}` in string values are expanded from `env`. The result is deeply frozen. */
export function parseConfig(text: string, file = '<inline>', env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `yaml: ${e.message.split('\n')[0]}`));
  }
  const problems: string[] = [];
  const expanded = expandEnv(doc.toJS() ?? {}, env, [], problems);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const result = configSchema.safeParse(expanded);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error.issues));
  return deepFreeze(result.data);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  return parseConfig(text, file, env);
}

const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands `${VAR}` / `${VAR:-default}` inside string values only (never keys, never YAML syntax). */
function expandEnv(value: unknown, env: NodeJS.ProcessEnv, path: (string | number)[], problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_, name: string, fallback: string | undefined) => {
      const found = env[name] || fallback;
      if (found === undefined) problems.push(`${path.join('.')}: environment variable ${name} is not set and has no default`);
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...path, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, [...path, k], problems)]));
  }
  return value;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    // A record's bad key: say what a key must be, not only that it is invalid.
    const keyProblem = issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined;
    return `${path}: ${keyProblem ? `invalid key: ${keyProblem}` : issue.message}`;
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
