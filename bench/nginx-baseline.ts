/**
 * The "nginx auth_request + Redis" shape the issue compares the gateway with: nginx (one worker
 * per core, keep-alive to both backends) asks bench/auth-service.js about every request, then
 * proxies it. Started only when nginx is installed (Debian: nginx-light).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../common/net.js';
import { start, type Running } from './spawn.js';

export const HAS_NGINX = spawnSync('nginx', ['-v']).error === undefined;

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
  const keepAlive = 'proxy_http_version 1.1; proxy_set_header Connection "";';
  writeFileSync(
    conf,
    `worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
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
  const nginx = await start('nginx', ['nginx', '-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], {}, port);
  return { url: `http://127.0.0.1:${port}/users/1`, nginx, auth };
}
