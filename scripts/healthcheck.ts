/**
 * A container's health check, without curl or grpc_health_probe in the image:
 *   node dist/scripts/healthcheck.js http http://127.0.0.1:8080/__gateway/health
 *   node dist/scripts/healthcheck.js grpc 127.0.0.1:50051
 * Exit 0 when healthy (HTTP 2xx; gRPC health SERVING), 1 otherwise, within 2 s.
 */
import * as grpc from '@grpc/grpc-js';
import { loadHealthProto } from '../common/proto.js';

const TIMEOUT_MS = 2_000;

async function http(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  return res.ok;
}

function grpcHealth(address: string): Promise<boolean> {
  const { Health } = loadHealthProto().grpc.health.v1;
  const client = new Health(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.Check({ service: '' }, { deadline: Date.now() + TIMEOUT_MS }, (err, res) => {
      client.close();
      // SERVING is 1 on the wire; grpc-js decodes it as the name or the number depending on the loader.
      const serving = !err && (String(res?.status) === 'SERVING' || String(res?.status) === '1');
      if (!serving) console.error(`unhealthy: ${err?.message ?? `status ${String(res?.status)}`}`);
      resolve(serving);
    });
  });
}

const [kind, target] = process.argv.slice(2);
if ((kind !== 'http' && kind !== 'grpc') || !target) {
  console.error('usage: healthcheck.js http <url> | grpc <host:port>');
  process.exit(2);
}
const healthy = await (kind === 'http' ? http(target) : grpcHealth(target)).catch((err: Error) => {
  console.error(`unhealthy: ${err.message}`);
  return false;
});
process.exit(healthy ? 0 : 1);
