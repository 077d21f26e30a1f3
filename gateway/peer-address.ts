import type { Socket } from 'node:net';

/** The TCP peer's address, IPv4-mapped IPv6 written as IPv4; client-set forwarding headers are never trusted. */
export function peerAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
