/**
 * The balancer in front of `npm run start:scaled`'s gateways: nginx when it is installed
 * (round robin, keep-alive to the gateways, X-Forwarded-For set to the client, a failing gateway skipped
 * for 5 s), else the development-only TCP forwarder (dev-balancer.ts). Its config and logs go
 * to `<dataDir>/balancer`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../common/paths.js';

export interface LocalBalancer {
  name: 'nginx' | 'dev-balancer';
  command: string[];
  /** True when it tells the gateways who the client is (X-Forwarded-For): the gateways then trust 127.0.0.1. */
  forwardsClient: boolean;
}

export const HAS_NGINX = spawnSync('nginx', ['-v']).error === undefined;

/** Where an unprivileged nginx keeps its pid, log and temp files: all under `prefix`. */
export function nginxOwnFiles(prefix: string): { main: string; http: string } {
  return {
    main: `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log warn;`,
    http: `client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
  };
}

/** nginx in the foreground on `conf`, everything it writes under `prefix`. */
export function nginxCommand(prefix: string, conf: string): string[] {
  return ['nginx', '-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'];
}

export function localBalancer(port: number, gatewayPorts: number[], dataDir: string, preferNginx = HAS_NGINX): LocalBalancer {
  if (!preferNginx) {
    return { name: 'dev-balancer', command: [process.execPath, join(PROJECT_ROOT, 'dist/scripts/dev-balancer.js'), String(port), ...gatewayPorts.map((p) => `127.0.0.1:${p}`)], forwardsClient: false };
  }
  const prefix = resolve(dataDir, 'balancer');
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const own = nginxOwnFiles(prefix);
  writeFileSync(
    conf,
    `# Written by npm run start:scaled (scripts/local-balancer.ts).
worker_processes 1;
${own.main}
events { worker_connections 4096; }
http {
  access_log off;
  ${own.http}
  upstream gateways {
${gatewayPorts.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      # The first hop: what a client sent is replaced, not appended to (its address is loopback, like mine).
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
      proxy_next_upstream error timeout;
    }
  }
}
`,
  );
  return { name: 'nginx', command: nginxCommand(prefix, conf), forwardsClient: true };
}
