'use strict';
/*
 * A TCP proxy on 127.0.0.1 that adds latency (this kernel has no netem): every chunk read from
 * either side is written to the other `delay` ms later, in order. setDelay(ms) applies to chunks
 * read from then on. Bounded: a side whose queue holds more than 8 MiB is paused until it drains.
 */
const net = require('node:net');

const HOST = '127.0.0.1';
const MAX_QUEUED = 8 << 20;

// Forwards src -> dst through a FIFO of {due, chunk}.
function pipeDelayed(src, dst, proxy) {
  const q = [];
  let bytes = 0;
  let timer = null;
  const drain = () => {
    timer = null;
    const now = Date.now();
    while (q.length && q[0].due <= now) {
      const { chunk } = q.shift();
      bytes -= chunk.length;
      if (!dst.destroyed) dst.write(chunk);
    }
    if (bytes <= MAX_QUEUED && src.isPaused()) src.resume();
    if (q.length) timer = setTimeout(drain, Math.max(0, q[0].due - now));
  };
  src.on('data', (chunk) => {
    q.push({ due: Date.now() + proxy.delay, chunk });
    bytes += chunk.length;
    if (bytes > MAX_QUEUED) src.pause();
    if (!timer) timer = setTimeout(drain, Math.max(0, q[0].due - Date.now()));
  });
  // the other side learns of an end only after what came before it
  src.on('end', () => {
    const end = () => (q.length ? setTimeout(end, 5) : dst.end());
    end();
  });
}

async function startDelayProxy(targetPort, { delay = 0 } = {}) {
  const proxy = { delay, conns: new Set() };
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: targetPort, host: HOST });
    for (const s of [client, upstream]) {
      proxy.conns.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        proxy.conns.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pipeDelayed(client, upstream, proxy);
    pipeDelayed(upstream, client, proxy);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  return {
    port: server.address().port,
    setDelay(ms) {
      proxy.delay = ms;
    },
    close() {
      for (const s of proxy.conns) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startDelayProxy };
