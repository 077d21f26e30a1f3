import * as grpc from '@grpc/grpc-js';
import {
  loadAuthProto,
  type AuthServiceClient,
  type CheckBatch,
  type CheckCall,
  type CheckRequest,
  type CheckResponse__Output,
  type CheckResultBatch__Output,
  type TokenRequest,
  type TokenResponse__Output,
} from '../common/proto.js';

/** Why a check got no answer; `code` is the gRPC status, as in a unary call's error. */
export class CheckFailedError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
    this.name = 'CheckFailedError';
  }
}

interface Pending {
  resolve: (response: CheckResponse__Output) => void;
  reject: (err: CheckFailedError) => void;
  timer: NodeJS.Timeout;
  /** performance.now() when the caller stops waiting. */
  deadline: number;
}

export interface SidecarClientOptions {
  /** grpc-js moves a channel with no call in flight to IDLE after this long (its default: 30 minutes). */
  idleTimeoutMs?: number;
  /** Called on every change of the channel's connectivity (SidecarPool keeps its connected set with it). */
  onConnectivity?: () => void;
  /** TLS (or mTLS) to the sidecar (common/grpc-tls.ts); default plaintext. */
  credentials?: grpc.ChannelCredentials;
  /** More channel options, e.g. the name to check the sidecar's certificate against. */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * Characters of strings per stream message. Header values are latin1 (at most 2 bytes each in
 * UTF-8), so a message stays under 2 MiB plus framing: half of gRPC's default 4 MiB limit.
 */
const MAX_MESSAGE_CHARS = 1024 * 1024;

/** The strings a check carries, plus room for field tags and the numbers. */
function approximateChars(request: CheckRequest): number {
  let chars = 64 + (request.path?.length ?? 0) + (request.route?.length ?? 0) + (request.request_id?.length ?? 0) + (request.client_ip?.length ?? 0);
  const headers = request.headers;
  for (const name in headers) chars += name.length + (headers[name]?.length ?? 0) + 8;
  return chars;
}

/** How long a token endpoint call may take: a login waits for bcrypt (~330 ms at cost 12) behind up to 64 others on one thread. */
const TOKEN_DEADLINE_MS = 10_000;

type CheckStream = grpc.ClientDuplexStream<CheckBatch, CheckResultBatch__Output>;

/**
 * The gateway's channel to the auth sidecar. Checks are multiplexed on one long-lived
 * CheckStream, all calls of an event-loop turn in one message; each call has its own deadline.
 * When the stream breaks, every pending call fails at once (the gateway answers 503) and the
 * next call opens a new stream.
 */
export class SidecarClient {
  private readonly client: AuthServiceClient;
  private stream: CheckStream | undefined;
  private readonly pending = new Map<number, Pending>();
  private outgoing: CheckCall[] = [];
  private flushScheduled = false;
  private nextId = 1;

  constructor(address: string, private readonly deadlineMs: number, private readonly options: SidecarClientOptions = {}) {
    const { AuthService } = loadAuthProto().auth.v1;
    this.client = new AuthService(address, options.credentials ?? grpc.credentials.createInsecure(), {
      ...options.channelOptions,
      ...(options.idleTimeoutMs === undefined ? {} : { 'grpc.client_idle_timeout_ms': options.idleTimeoutMs }),
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Reconnect quickly after a sidecar restart instead of backing off to minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
    });
    this.keepConnected();
  }

  /**
   * Connects now rather than on the first request, and again whenever grpc-js idles the channel
   * (no call for its idle timeout): health reports the truth from the start, and a gateway that
   * was idle for half an hour is not reported down (a balancer waiting for health would never
   * send the traffic that wakes it).
   */
  private keepConnected(): void {
    const channel = this.channel;
    const watch = (): void => {
      const state = channel.getConnectivityState(true);
      this.options.onConnectivity?.();
      if (state === grpc.connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Infinity, watch);
    };
    watch();
  }

  check(request: CheckRequest): Promise<CheckResponse__Output> {
    return new Promise((resolve, reject) => {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      const timer = setTimeout(() => this.settle(id, new CheckFailedError(grpc.status.DEADLINE_EXCEEDED, `no decision within ${this.deadlineMs} ms`)), this.deadlineMs);
      this.pending.set(id, { resolve, reject, timer, deadline: performance.now() + this.deadlineMs });
      this.outgoing.push({ id, request });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** One call of the token endpoints (unary: rare, and slow by design while bcrypt runs). */
  token(request: TokenRequest): Promise<TokenResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.Token(request, { deadline: Date.now() + TOKEN_DEADLINE_MS }, (err, response) =>
        err || !response ? reject(new CheckFailedError(err?.code ?? grpc.status.INTERNAL, err?.details ?? 'no answer')) : resolve(response),
      ),
    );
  }

  /** The channel, for watching its connectivity. */
  get channel(): ReturnType<AuthServiceClient['getChannel']> {
    return this.client.getChannel();
  }

  /** True while the channel to the sidecar is connected. */
  isConnected(): boolean {
    return this.channel.getConnectivityState(false) === grpc.connectivityState.READY;
  }

  close(): void {
    this.failAll(new CheckFailedError(grpc.status.CANCELLED, 'client closed'));
    this.stream?.end();
    this.client.close();
  }

  /** Closes once every check sent so far has settled: each is answered or times out within one deadline. */
  closeWhenSettled(): void {
    setTimeout(() => this.close(), this.deadlineMs).unref();
  }

  /**
   * Sends the turn's calls, in as many messages as keep each under MAX_MESSAGE_CHARS: the
   * sidecar refuses a message over gRPC's 4 MiB and would fail every call in it.
   */
  private flush(): void {
    this.flushScheduled = false;
    const calls = this.outgoing;
    this.outgoing = [];
    // Calls whose deadline already passed were settled: don't send them. The others tell the
    // sidecar how long they are still waited for, and go in messages of at most MAX_MESSAGE_CHARS.
    const now = performance.now();
    let batch: CheckCall[] = [];
    let chars = 0;
    for (const call of calls) {
      const pending = this.pending.get(call.id as number);
      if (!pending) continue;
      const request = call.request as CheckRequest;
      request.deadline_ms = Math.max(1, Math.floor(pending.deadline - now));
      const size = approximateChars(request);
      if (chars + size > MAX_MESSAGE_CHARS && batch.length > 0) {
        this.openStream().write({ calls: batch, sent_ms: now });
        batch = [];
        chars = 0;
      }
      batch.push(call);
      chars += size;
    }
    if (batch.length > 0) this.openStream().write({ calls: batch, sent_ms: now });
  }

  private openStream(): CheckStream {
    if (this.stream) return this.stream;
    const stream = this.client.CheckStream() as CheckStream;
    this.stream = stream;
    stream.on('data', (batch: CheckResultBatch__Output) => {
      for (const result of batch.results) {
        if (result.response) this.settle(result.id, undefined, result.response);
        else this.settle(result.id, new CheckFailedError(grpc.status.INTERNAL, result.error || 'no decision'));
      }
    });
    const broken = (err?: Error & { code?: grpc.status }): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.failAll(new CheckFailedError(err?.code ?? grpc.status.UNAVAILABLE, err?.message ?? 'check stream ended'));
    };
    stream.on('error', broken);
    stream.on('end', () => broken());
    return stream;
  }

  private settle(id: number, err?: CheckFailedError, response?: CheckResponse__Output): void {
    const pending = this.pending.get(id);
    if (!pending) return; // already timed out
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (response) pending.resolve(response);
    else pending.reject(err as CheckFailedError);
  }

  private failAll(err: CheckFailedError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, err);
  }
}
