/**
 * WebSocket upgrades on routes with `websocket: true`. The server's 'upgrade' event gets a
 * ServerResponse on the raw socket (upgradeListener), so the upgrade takes the gateway's one
 * request path: routed, checked by the sidecar (token, revocation, bans, ACL, limits: one
 * request), refused with the usual JSON answer, and audited once. An allowed upgrade is proxied
 * with http-proxy's ws(); once the upstream switches protocols its frames to the client pass
 * through a FramePassage, so the socket can be closed with 1008 at a frame boundary when the
 * token is revoked or the client banned (SecurityWatch), or the token expires (at its exp plus the
 * issuer's clock skew, when the sidecar would refuse it). Its audit event is written when the
 * socket closes: status 101, duration as latency, bytes each way (the handshake included).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type HttpProxy from 'http-proxy';
import { recordOf, type RequestRecord } from '../audit/audit-record.js';
import { closeFrame, FramePassage } from './close-frame.js';
import type { OpenSocket, OpenSockets } from './open-sockets.js';
import { markUpgrade, upgradeOf } from './upgrade-request.js';

/** Policy violation (RFC 6455 §7.4.1): what a revoked or banned client's socket is closed with. */
const POLICY_VIOLATION = 1008;

/**
 * The server's 'upgrade' listener: hands the request to `handle` with a response written on the
 * raw socket; the socket ends with any answer that is not an upgrade.
 */
export function upgradeListener(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    markUpgrade(req, socket, head);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.on('finish', () => socket.end());
    handle(req, res);
  };
}

/** Proxies an allowed handshake; `onError` as http-proxy's callback. */
export function proxyWebSocket(proxy: HttpProxy, req: IncomingMessage, options: HttpProxy.ServerOptions, onError: (err: Error) => void): void {
  const { socket, head } = upgradeOf(req)!;
  // Hop-by-hop headers were dropped with the others; the handshake needs these two back.
  req.headers.connection = 'Upgrade';
  req.headers.upgrade = 'websocket';
  // An upgraded connection leaves the keep-alive pool for good: no agent.
  proxy.ws(req, socket, head, { ...options, agent: undefined }, onError);
}

/**
 * Watches http-proxy's upgrades: records the upstream's answer, passes its frames through a
 * FramePassage and registers the open socket with `sockets` until it closes.
 */
export function observeWebSockets(proxy: HttpProxy, sockets: OpenSockets): void {
  // 'proxyReqWs' comes before http-proxy listens for the upgrade, 'open' right after it has
  // piped the two sockets (in the same tick, before any byte flows): the upgrade's socket is
  // noted in between, to be re-piped on 'open'.
  const upgrading = new WeakMap<Duplex, { record: RequestRecord; client: Duplex }>();
  proxy.on('proxyReqWs', (proxyReq, req) => {
    const record = recordOf(req);
    const client = upgradeOf(req)?.socket;
    if (!record || !client) return;
    proxyReq.on('response', (answer) => (record.upstreamStatus = answer.statusCode ?? null));
    proxyReq.on('upgrade', (_answer, proxySocket: Duplex) => {
      record.upstreamStatus = 101;
      upgrading.set(proxySocket, { record, client });
    });
  });
  proxy.on('open', (proxySocket: Duplex) => {
    const upgraded = upgrading.get(proxySocket);
    if (!upgraded) return;
    upgrading.delete(proxySocket);
    const { record, client } = upgraded;
    const passage = new FramePassage();
    proxySocket.unpipe(client);
    proxySocket.pipe(passage).pipe(client);
    const open = openSocket(record, passage, proxySocket, client);
    sockets.add(open);
    // A socket lives as long as the token it was opened with.
    const expiry = record.tokenValidUntil > 0 ? at(record.tokenValidUntil * 1000, () => open.close('token expired')) : undefined;
    client.once('close', () => {
      expiry?.cancel();
      sockets.remove(open);
    });
  });
}

/** The longest a Node timer waits (2^31 - 1 ms, ~24.8 days); a longer wait is armed again. */
const MAX_TIMER_MS = 2_147_483_647;

/** Runs `fn` at epoch time `ms` (at once when it has passed), however far off. */
function at(ms: number, fn: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const wait = ms - Date.now();
    if (wait <= 0) return fn();
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/** How long a close waits for the upstream's frame in passage to end before the client is cut off. */
const CLOSE_WAIT_MS = 1_000;

function openSocket(record: RequestRecord, passage: FramePassage, upstream: Duplex, client: Duplex): OpenSocket {
  let closed = false;
  return {
    jti: record.jti,
    consumer: record.consumer,
    iat: record.tokenIat,
    kid: record.kid,
    clientIp: record.clientIp,
    close(reason: string) {
      if (closed) return;
      closed = true;
      record.detail = `closed:${reason.replaceAll(' ', '_')}`.slice(0, 64);
      passage.once('end', () => upstream.destroy());
      passage.closeWith(closeFrame(POLICY_VIOLATION, reason));
      // An upstream stalled inside a frame: the client is cut off without a close frame.
      setTimeout(() => {
        upstream.destroy();
        client.destroy();
      }, CLOSE_WAIT_MS).unref();
    },
  };
}
