import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadAuthProto, type CheckRequest } from '../common/proto.js';
import { SidecarClient } from '../gateway/sidecar-client.js';
import { atFixedRate, type RateResult } from './open-loop.js';

export interface DecisionRate {
  total: number;
  perSecond: number;
}

function checkRequest(token: string): CheckRequest {
  return { request_id: randomUUID(), route: 'api', method: 'GET', path: '/users/1', client_ip: '127.0.0.1', headers: { authorization: `Bearer ${token}` } };
}

/** Runs `lanes` loops of `call` for `seconds`, counting answers; `call` resolves true, or why it was refused. */
async function drive(call: () => Promise<true | string>, seconds: number, lanes = 50): Promise<DecisionRate> {
  const started = Date.now();
  const until = started + seconds * 1000;
  let total = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < until) {
        const answer = await call();
        if (answer !== true) throw new Error(`the sidecar denied a benchmark request: ${answer}`);
        total++;
      }
    }),
  );
  return { total, perSecond: total / ((Date.now() - started) / 1000) };
}

/**
 * Decisions over the gateway's own path: the multiplexed CheckStream, 50 in flight. Several
 * tokens (consumers) are taken in turn: on a Redis Cluster their decisions fall in different slots.
 */
export async function streamDecisions(address: string, token: string | readonly string[], seconds: number): Promise<DecisionRate> {
  const tokens = typeof token === 'string' ? [token] : token;
  let next = 0;
  const client = new SidecarClient(address, 5000);
  try {
    return await drive(async () => {
      const answer = await client.check(checkRequest(tokens[next++ % tokens.length]!));
      return answer.allow || answer.reason;
    }, seconds);
  } finally {
    client.close();
  }
}

/** One decision at a time on the gateway's stream, at a fixed rate (open loop): the wait every request has. */
export async function streamDecisionsAtRate(address: string, token: string, rate: number, seconds: number): Promise<RateResult> {
  const client = new SidecarClient(address, 5000);
  try {
    return await atFixedRate(() => client.check(checkRequest(token)).then((answer) => answer.allow || `refused:${answer.reason}`, (err: Error) => err.message), rate, seconds);
  } finally {
    client.close();
  }
}

/** Decisions as one unary Check call each, 50 in flight (other clients' path). */
export async function unaryDecisions(address: string, token: string, seconds: number): Promise<DecisionRate> {
  const { AuthService } = loadAuthProto().auth.v1;
  const client = new AuthService(address, grpc.credentials.createInsecure());
  try {
    return await drive(
      () => new Promise<true | string>((resolve, reject) => client.Check(checkRequest(token), (err, res) => (err ? reject(err) : resolve(res?.allow === true || (res?.reason ?? 'no answer'))))),
      seconds,
    );
  } finally {
    client.close();
  }
}
