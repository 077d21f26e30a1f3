import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import { authorizationCount } from '../../gateway/authorization-count.js';

/** A request as Node's parser leaves it: the first Authorization in `headers`, all in `rawHeaders`. */
function parsed(rawHeaders: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] ??= rawHeaders[i + 1]!;
  return { headers, rawHeaders } as unknown as IncomingMessage;
}

describe('authorizationCount', () => {
  it('counts Authorization fields in any spelling of the name', () => {
    expect(authorizationCount(parsed(['Host', 'h', 'authorization', 'Bearer a', 'AUTHORIZATION', 'Bearer b', 'AuThOrIzAtIoN', 'Basic c']))).to.equal(3);
  });

  it('counts one, and none when there is none', () => {
    expect(authorizationCount(parsed(['Host', 'h', 'Authorization', 'Bearer a', 'X-Authorization', 'Bearer b']))).to.equal(1);
    expect(authorizationCount(parsed(['Host', 'h', 'Proxy-Authorization', 'Basic x']))).to.equal(0);
  });

  it('does not read header values as names', () => {
    expect(authorizationCount(parsed(['Authorization', 'Bearer a', 'X-Note', 'authorization']))).to.equal(1);
  });
});
