/**
 * The processes of the local stack and the environment each one gets: `npm start` runs
 * exactly these, and a test holds docker-compose.yml to the same commands and variables.
 */
export interface StackService {
  name: 'demo-upstream' | 'auth-sidecar' | 'audit-worker' | 'gateway';
  /** The package.json script that runs it (compose runs `npm run <script>`). */
  script: string;
  /** The port that answers once it is ready. */
  port: number;
  env: Record<string, string>;
}

export interface StackSettings {
  redisUrl: string;
  adminToken: string;
  demoJwtSecret: string;
  signingKeySecret: string;
  config: string;
  gatewayPort: number;
  sidecarPort: number;
  auditPort: number;
  upstreamPort: number;
  dataDir: string;
  logLevel: string;
}

/** In start order: each one is ready before the next starts. */
export function stackServices(s: StackSettings): StackService[] {
  const shared = { NODE_ENV: 'development', GATEWAY_CONFIG: s.config, REDIS_URL: s.redisUrl, LOG_LEVEL: s.logLevel };
  return [
    { name: 'demo-upstream', script: 'start:demo-upstream', port: s.upstreamPort, env: { DEMO_UPSTREAM_PORT: String(s.upstreamPort) } },
    {
      name: 'auth-sidecar',
      script: 'start:sidecar',
      port: s.sidecarPort,
      env: { ...shared, SIDECAR_PORT: String(s.sidecarPort), DEMO_JWT_SECRET: s.demoJwtSecret, SIGNING_KEY_SECRET: s.signingKeySecret },
    },
    {
      name: 'audit-worker',
      script: 'start:worker',
      port: s.auditPort,
      env: { ...shared, AUDIT_PORT: String(s.auditPort), AUDIT_DATA_DIR: `${s.dataDir}/audit`, ADMIN_TOKEN: s.adminToken },
    },
    {
      name: 'gateway',
      script: 'start:gateway',
      port: s.gatewayPort,
      env: {
        ...shared,
        GATEWAY_PORT: String(s.gatewayPort),
        SIDECAR_ADDR: `127.0.0.1:${s.sidecarPort}`,
        AUDIT_SPOOL_DIR: `${s.dataDir}/spool`,
        DEMO_UPSTREAM_URL: `http://127.0.0.1:${s.upstreamPort}`,
      },
    },
  ];
}

/** Variables `npm start` sets that compose replaces by its own services (PostgreSQL for the embedded store). */
export const LOCAL_ONLY_VARIABLES = ['AUDIT_DATA_DIR'] as const;
