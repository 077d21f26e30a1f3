import * as grpc from '@grpc/grpc-js';
import { loadAuthProto, type AuthServiceClient, type CheckRequest, type CheckResponse__Output } from '../common/proto.js';

/** The gateway's one channel to the auth sidecar. Every call carries a deadline. */
export class SidecarClient {
  private readonly client: AuthServiceClient;

  constructor(address: string, private readonly deadlineMs: number) {
    const { AuthService } = loadAuthProto().auth.v1;
    this.client = new AuthService(address, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Retry connecting quickly after a sidecar restart instead of backing off to minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
    });
  }

  check(request: CheckRequest): Promise<CheckResponse__Output> {
    return new Promise((resolve, reject) => {
      this.client.Check(request, { deadline: Date.now() + this.deadlineMs }, (err, response) => {
        if (err || !response) return reject(err ?? new Error('empty response'));
        return resolve(response);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
