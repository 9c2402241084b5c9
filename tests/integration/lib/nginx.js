'use strict';
/*
 * Debian's nginx, started by a test in front of some servers: its own config file, pid file, logs
 * and temp paths in a fresh temp dir, one process (master_process off, daemon off) listening on a
 * free 127.0.0.1 port, never the system service. startNginx(ports, {sticky}) resolves
 * {url, port, handle, log(), stop()} once it answers; the upstream is a plain round robin over
 * 127.0.0.1:<ports> (seed 003's nginx.conf, whose upstream has no ip_hash), or ip_hash with sticky.
 */
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const NGINX = '/usr/sbin/nginx';

function available() {
  return fs.existsSync(NGINX);
}

function config(dir, port, upstreams, sticky) {
  const t = (n) => path.join(dir, n);
  return `daemon off;
master_process off;
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  upstream socketio_backend {
    ${sticky ? 'ip_hash;' : ''}
${upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://socketio_backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 120s;
      proxy_buffering off;
    }
  }
}
`;
}

async function startNginx(upstreams, { sticky = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-it-nginx-'));
  const port = await h.freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, config(dir, port, upstreams, sticky));
  const handle = h.spawnTracked(NGINX, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')],
    { name: `nginx:${port}` });
  const url = `http://${h.HOST}:${port}`;
  const log = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  try {
    await h.waitUntil(() => new Promise((resolve, reject) => {
      if (!handle.running) {
        const err = new Error(`nginx exited: ${log()}`);
        err.fatal = true;
        reject(err);
        return;
      }
      const req = http.get(`${url}/health`, { agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
    }), { timeout: 10000, message: `nginx on ${port}` });
  } catch (err) {
    await h.stop(handle, 2000);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    handle,
    log,
    describe: () => `--- nginx ${port} error.log ---\n${log()}\n--- end ---\n`,
    async stop() {
      await h.stop(handle, 5000);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { available, startNginx };
