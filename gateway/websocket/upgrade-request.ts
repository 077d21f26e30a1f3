/** A request that came through the server's 'upgrade' event, with its raw socket (websocket-proxy.ts). */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const UPGRADE = Symbol('gateway.upgrade');
type UpgradeRequest = IncomingMessage & { [UPGRADE]?: { socket: Duplex; head: Buffer } };

export function markUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  (req as UpgradeRequest)[UPGRADE] = { socket, head };
}

/** The raw socket and the bytes read past the head of an upgrade request; undefined for any other. */
export function upgradeOf(req: IncomingMessage): { socket: Duplex; head: Buffer } | undefined {
  return (req as UpgradeRequest)[UPGRADE];
}

/** True for a WebSocket handshake that came through the 'upgrade' event. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return upgradeOf(req) !== undefined && req.headers.upgrade?.toLowerCase() === 'websocket';
}

/** Bytes each way on an upgrade request's socket (the handshake included), for its audit event. */
export function webSocketTraffic(req: IncomingMessage): { bytesIn: number; bytesOut: number } | undefined {
  const socket = upgradeOf(req)?.socket as { bytesRead?: number; bytesWritten?: number } | undefined;
  return socket && { bytesIn: socket.bytesRead ?? 0, bytesOut: socket.bytesWritten ?? 0 };
}
