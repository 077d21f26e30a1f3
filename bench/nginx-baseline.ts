/**
 * The "nginx auth_request + Redis" shape the issue compares the gateway with: nginx (one worker
 * per core, keep-alive to both backends) asks bench/auth-service.js about every request, then
 * proxies it. Started only when nginx is installed (Debian: nginx-light).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../common/net.js';
import { nginxCommand, nginxOwnFiles } from '../scripts/local-balancer.js';
import { start, type Running } from './spawn.js';


export interface NginxBaseline {
  url: string;
  nginx: Running;
  auth: Running;
}

export async function startNginxBaseline(dir: string, upstreamPort: number, redisUrl: string, secret: string): Promise<NginxBaseline> {
  const port = await freePort();
  const authPort = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const own = nginxOwnFiles(prefix);
  const keepAlive = 'proxy_http_version 1.1; proxy_set_header Connection "";';
  writeFileSync(
    conf,
    `worker_processes auto;
${own.main}
events { worker_connections 4096; }
http {
  access_log off;
  ${own.http}
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  upstream auth { server 127.0.0.1:${authPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location = /_auth {
      internal;
      proxy_pass http://auth; ${keepAlive}
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }
    location / {
      auth_request /_auth;
      proxy_pass http://app; ${keepAlive}
    }
  }
}
`,
  );
  const auth = await start('auth-service', ['bench/auth-service.js', String(authPort), redisUrl], { BENCH_SECRET: secret }, authPort);
  const nginx = await start('nginx', nginxCommand(prefix, conf), {}, port);
  return { url: `http://127.0.0.1:${port}/users/1`, nginx, auth };
}
