/**
 * The processes of `npm run start:scaled`: the topology of docker compose with replicas, on
 * one machine. Built from the single stack (stack.ts), so each replica runs exactly what
 * `npm start` runs, with its own port: sidecars on SIDECAR_PORT, +1, ...; workers' query APIs
 * on AUDIT_PORT, +1, ... (the first is the one announced); gateways on GATEWAY_PORT + 1, + 2,
 * ..., behind a local balancer on GATEWAY_PORT. The workers share a PostgreSQL store.
 */
import { stackServices, type StackService, type StackSettings } from './stack.js';

export interface Replicas {
  gateways: number;
  sidecars: number;
  workers: number;
}

export const DEFAULT_REPLICAS: Replicas = { gateways: 3, sidecars: 2, workers: 2 };

export interface ScaledSettings extends StackSettings {
  /** The workers' shared store: two workers cannot share an embedded one. */
  auditDbUrl: string;
  auditDbSchema?: string | undefined;
  /** The balancer's address, which the gateways trust to name the client (X-Forwarded-For); unset when it cannot (a TCP forwarder). */
  balancerAddress?: string | undefined;
}

export type ScaledService = Omit<StackService, 'name'> & { name: string; kind: StackService['name'] };

const replicate = (service: StackService, count: number, port: (i: number) => number, env: (i: number) => Record<string, string>): ScaledService[] =>
  Array.from({ length: count }, (_, i) => ({ ...service, kind: service.name, name: `${service.name}-${i + 1}`, port: port(i), env: { ...service.env, ...env(i) } }));

/** In start order, like stackServices. */
export function scaledServices(s: ScaledSettings, replicas: Replicas = DEFAULT_REPLICAS): ScaledService[] {
  const [upstream, sidecar, worker, gateway] = stackServices(s) as [StackService, StackService, StackService, StackService];
  // Replicas take any free status port (each logs its status_port at start): fixed ones would collide.
  const sidecars = replicate(sidecar, replicas.sidecars, (i) => s.sidecarPort + i, (i) => ({ SIDECAR_PORT: String(s.sidecarPort + i), SIDECAR_STATUS_PORT: '0' }));
  const { AUDIT_DATA_DIR: _embedded, ...workerEnv } = worker.env;
  const workers = replicate({ ...worker, env: workerEnv }, replicas.workers, (i) => s.auditPort + i, (i) => ({
    AUDIT_PORT: String(s.auditPort + i),
    WORKER_STATUS_PORT: '0',
    AUDIT_DB_URL: s.auditDbUrl,
    ...(s.auditDbSchema ? { AUDIT_DB_SCHEMA: s.auditDbSchema } : {}),
  }));
  const gateways = replicate(gateway, replicas.gateways, (i) => s.gatewayPort + 1 + i, (i) => ({
    GATEWAY_PORT: String(s.gatewayPort + 1 + i),
    GATEWAY_STATUS_PORT: '0',
    SIDECAR_ADDR: sidecars.map((c) => `127.0.0.1:${c.port}`).join(','),
    ...(s.balancerAddress ? { TRUSTED_PROXIES: s.balancerAddress } : {}),
  }));
  return [{ ...upstream, kind: upstream.name }, ...sidecars, ...workers, ...gateways];
}
