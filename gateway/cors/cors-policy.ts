/**
 * One route's CORS (common/config/cors-schema.ts), ready for requests: which origins it allows,
 * what a preflight may ask, and the headers of each answer, built once per route. Origins are
 * compared exactly (lower-cased, scheme, host and port), or by a `*.` subdomain pattern; an
 * Origin header that is not a plain origin matches nothing.
 */
import type { CorsConfig } from '../../common/config/schema.js';

const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/;
const LABELS = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;

export type PreflightAnswer = { ok: true; headers: Record<string, string> } | { ok: false; detail: 'cors_origin' | 'cors_method' | 'cors_headers' };

export class CorsPolicy {
  private readonly exact: ReadonlySet<string>;
  /** `*.` patterns as [scheme + '//', '.domain[:port]']. */
  private readonly wildcards: readonly (readonly [string, string])[];
  private readonly anyOrigin: boolean;
  private readonly methods: ReadonlySet<string>;
  private readonly allowHeaders: ReadonlySet<string>;
  private readonly preflightHeaders: Record<string, string>;
  private readonly actualHeaders: Record<string, string>;

  constructor(config: CorsConfig) {
    this.exact = new Set(config.origins.filter((o) => !o.includes('*')));
    this.wildcards = config.origins.filter((o) => o.includes('://*.')).map((o) => [o.slice(0, o.indexOf('*')), o.slice(o.indexOf('*') + 1)] as const);
    this.anyOrigin = config.origins.includes('*');
    this.methods = new Set(config.methods);
    this.allowHeaders = new Set(config.allow_headers);
    const credentials: Record<string, string> = config.credentials ? { 'Access-Control-Allow-Credentials': 'true' } : {};
    this.preflightHeaders = {
      ...credentials,
      'Access-Control-Allow-Methods': config.methods.join(', '),
      ...(config.allow_headers.length > 0 ? { 'Access-Control-Allow-Headers': config.allow_headers.join(', ') } : {}),
      'Access-Control-Max-Age': String(config.max_age),
      Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    };
    this.actualHeaders = { ...credentials, ...(config.expose_headers.length > 0 ? { 'Access-Control-Expose-Headers': config.expose_headers.join(', ') } : {}) };
  }

  /** The value of Access-Control-Allow-Origin for `origin`; undefined when it is not allowed. */
  allowOrigin(origin: string): string | undefined {
    const o = origin.toLowerCase();
    if (this.exact.has(o)) return origin;
    if (ORIGIN.test(o)) {
      for (const [prefix, suffix] of this.wildcards) {
        if (o.startsWith(prefix) && o.endsWith(suffix) && LABELS.test(o.slice(prefix.length, o.length - suffix.length))) return origin;
      }
    }
    return this.anyOrigin ? '*' : undefined;
  }

  /** The answer to a preflight from `origin` asking for `method` and the comma-separated `requestHeaders`. */
  preflight(origin: string, method: string, requestHeaders: string | undefined): PreflightAnswer {
    const allowed = this.allowOrigin(origin);
    if (allowed === undefined) return { ok: false, detail: 'cors_origin' };
    if (!this.methods.has(method)) return { ok: false, detail: 'cors_method' };
    const asked = (requestHeaders ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
    if (asked.some((h) => !this.allowHeaders.has(h))) return { ok: false, detail: 'cors_headers' };
    return { ok: true, headers: { 'Access-Control-Allow-Origin': allowed, ...this.preflightHeaders } };
  }

  /** The headers of an answer to an actual request from `origin`; undefined when it is not allowed (the browser keeps the answer from the page). */
  answerHeaders(origin: string): Record<string, string> | undefined {
    const allowed = this.allowOrigin(origin);
    return allowed === undefined ? undefined : { 'Access-Control-Allow-Origin': allowed, ...this.actualHeaders };
  }
}

/** Each route's policy: its own `cors`, else the top-level one; none for `cors: false`. */
export function corsPolicies(config: { cors?: CorsConfig | undefined; routes: readonly { name: string; cors?: CorsConfig | false | undefined }[] }): Map<string, CorsPolicy> {
  const policies = new Map<string, CorsPolicy>();
  const shared = config.cors && new CorsPolicy(config.cors);
  for (const route of config.routes) {
    const policy = route.cors === false ? undefined : route.cors ? new CorsPolicy(route.cors) : shared;
    if (policy) policies.set(route.name, policy);
  }
  return policies;
}
