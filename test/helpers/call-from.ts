import { request } from 'node:http';

/**
 * GET `url` from the local address `from` (any 127.0.0.x reaches the loopback), so one test
 * machine can be many client ips. Resolves the status and the JSON body's `reason`.
 */
export function callFrom(url: string, from: string, token?: string, headers: Record<string, string> = {}): Promise<{ status: number; reason?: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, localAddress: from, headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: body.startsWith('{') ? (JSON.parse(body) as { reason?: string }).reason : undefined }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
