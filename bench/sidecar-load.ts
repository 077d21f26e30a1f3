import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadAuthProto, type CheckRequest } from '../common/proto.js';

/** Check calls straight to the sidecar, 50 in flight, for `seconds`. */
export async function sidecarDecisionsPerSecond(address: string, token: string, seconds: number): Promise<{ total: number; perSecond: number }> {
  const { AuthService } = loadAuthProto().auth.v1;
  const client = new AuthService(address, grpc.credentials.createInsecure());
  const request: CheckRequest = { request_id: randomUUID(), route: 'api', method: 'GET', path: '/users/1', client_ip: '127.0.0.1', headers: { authorization: `Bearer ${token}` } };
  const started = Date.now();
  const until = started + seconds * 1000;
  let total = 0;
  const lane = async (): Promise<void> => {
    while (Date.now() < until) {
      await new Promise<void>((resolve, reject) =>
        client.Check(request, (err, res) => (err ? reject(err) : res?.allow ? resolve() : reject(new Error(`denied: ${res?.reason}`)))),
      );
      total++;
    }
  };
  await Promise.all(Array.from({ length: 50 }, lane));
  client.close();
  return { total, perSecond: total / ((Date.now() - started) / 1000) };
}
