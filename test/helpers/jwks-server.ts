import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Published {
  status: number;
  keys: unknown[];
  cacheControl?: string;
}

/** A JWKS server: serves `published` at /jwks.json and records every path asked for. */
export class JwksServer {
  published: Published = { status: 200, keys: [] };
  readonly asked: string[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<JwksServer> {
    let self: JwksServer | undefined;
    const server = createServer((req, res) => {
      self!.asked.push(req.url ?? '');
      const { status, keys, cacheControl } = self!.published;
      res.writeHead(req.url === '/jwks.json' ? status : 404, { 'content-type': 'application/json', ...(cacheControl ? { 'cache-control': cacheControl } : {}) });
      res.end(JSON.stringify({ keys }));
    });
    self = new JwksServer(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }

  get fetches(): number {
    return this.asked.filter((p) => p === '/jwks.json').length;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** An ES256 key pair named `kid`, with its public JWK as a JWKS lists it. */
export function jwksPair(kid: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' } };
}
