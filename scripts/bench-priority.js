#!/usr/bin/env node
'use strict';
/*
 * Priority-stream benchmark (issue 6): XADD -> client latency of a PRIORITY_STREAMS stream and of
 * an ordinary stream while the ordinary lane is busy.
 *
 *   node scripts/bench-priority.js --streamio BIN [--baseline BIN] [--load-streams 1000]
 *                                  [--seconds 20] [--inflight 300] [--timeout SECONDS]
 *
 * For each binary (--baseline: an older build to compare with), a fresh redis-server gets
 * --load-streams streams `bench.load.<i>` plus `bench.ord` and `bench.prio`; the server runs with
 * CLUSTER_WORKERS=1, MAX_CONCURRENT_POOLS=1 (every ordinary pool in one lane) and
 * PRIORITY_STREAMS=bench.prio. Once every stream is discovered, one connection XADDs to random
 * load streams for --seconds with --inflight commands in flight (as fast as Redis takes them),
 * while every 50 ms another connection XADDs one entry to bench.prio and one to bench.ord carrying
 * the send time; one websocket client joined to both rooms records receive time - send time.
 * The first 2 s are not counted. Prints median / p90 / p99 / max per stream and server, the load
 * entries the server processed per second, then one JSON line. Everything it starts is stopped;
 * a hard timeout bounds the run.
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SUITE = path.join(ROOT, 'tests', 'integration');
const log = (s) => process.stderr.write(`bench-priority: ${s}\n`);

function usage(msg) {
  if (msg) process.stderr.write(`bench-priority: ${msg}\n`);
  process.stderr.write('usage: node scripts/bench-priority.js --streamio BIN [--baseline BIN] '
    + '[--load-streams N] [--seconds S] [--inflight N] [--timeout SECONDS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { loadStreams: 1000, seconds: 20, inflight: 300, timeout: 600 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const num = (v, lo, hi) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) usage(`${a} must be an integer from ${lo} to ${hi}`);
      return n;
    };
    if (a === '--streamio') o.streamio = path.resolve(val());
    else if (a === '--baseline') o.baseline = path.resolve(val());
    else if (a === '--load-streams') o.loadStreams = num(val(), 1, 100000);
    else if (a === '--seconds') o.seconds = num(val(), 5, 600);
    else if (a === '--inflight') o.inflight = num(val(), 1, 10000);
    else if (a === '--timeout') o.timeout = num(val(), 60, 7200);
    else usage(`unknown argument ${a}`);
  }
  if (!o.streamio) usage('give --streamio BIN');
  return o;
}

function loadHarness() {
  if (!fs.existsSync(path.join(SUITE, 'node_modules', 'socket.io-client'))) usage(`run npm ci in ${SUITE} first`);
  return require(path.join(SUITE, 'lib', 'harness.js'));
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => (s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 10) / 10 : null);
  return { n: s.length, median_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: q(1) };
}

async function runOne(h, name, bin, opts) {
  const redis = await h.startRedis({ timeout: 20000 });
  const r = { name };
  let srv = null;
  try {
    const c = await h.RedisClient.connect(redis.port);
    let batch = [];
    for (let i = 0; i < opts.loadStreams; i++) {
      batch.push(c.call('XADD', `bench.load.${i}`, '*', 'event', 'seed', 'data', '0'));
      if (batch.length === 1000) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    await c.call('XADD', 'bench.ord', '*', 'event', 'seed', 'data', '0');
    await c.call('XADD', 'bench.prio', '*', 'event', 'seed', 'data', '0');
    const port = await h.freePort();
    srv = await h.startServer({
      cmd: bin,
      env: {
        ...h.baseEnv(), REDIS_HOST: h.HOST, REDIS_PORT: String(redis.port), HOST: h.HOST, PORT: String(port),
        LOG_LEVEL: 'warn', CLUSTER_WORKERS: '1', MAX_CONCURRENT_POOLS: '1', STREAM_PATTERN: 'bench.*',
        PRIORITY_STREAMS: 'bench.prio',
      },
      port,
      name,
      timeout: 60000,
    });
    const want = opts.loadStreams + 2;
    await h.waitUntil(async () => (await h.getHealth(srv.url, { timeout: 5000 })).body.streams >= want,
      { timeout: 120000, interval: 200, message: `${name} to report ${want} streams` });
    const sock = await h.connectClient(srv.url);
    const lat = { 'bench.prio': [], 'bench.ord': [] };
    let counting = false;
    sock.on('room:message', (m) => {
      if (counting && m.event === 'probe' && lat[m.roomId]) lat[m.roomId].push(nowMs() - m.message.data.t);
    });
    await h.joinRoom(sock, 'bench.prio');
    await h.joinRoom(sock, 'bench.ord');
    const before = (await h.getHealth(srv.url)).body.messagesProcessed;
    const t0 = Date.now();
    const end = t0 + opts.seconds * 1000;
    let stop = false;
    let loadSent = 0;
    const loader = (async () => {
      const lc = await h.RedisClient.connect(redis.port);
      const lane = async () => {
        while (!stop && Date.now() < end) {
          const k = Math.floor(Math.random() * opts.loadStreams);
          await lc.callTimeout(30000, 'XADD', `bench.load.${k}`, '*', 'event', 'load', 'data', '{"x":1}');
          loadSent++;
        }
      };
      await Promise.all(Array.from({ length: opts.inflight }, lane));
      lc.close();
    })();
    const pc = await h.RedisClient.connect(redis.port);
    while (Date.now() < end) {
      if (!counting && Date.now() - t0 >= 2000) counting = true;
      const data = () => JSON.stringify({ t: nowMs() });
      await pc.call('XADD', 'bench.prio', '*', 'event', 'probe', 'data', data());
      await pc.call('XADD', 'bench.ord', '*', 'event', 'probe', 'data', data());
      await h.sleep(50);
    }
    stop = true;
    await loader;
    const secs = (Date.now() - t0) / 1000;
    await h.sleep(3000); // late probes still count
    counting = false;
    pc.close();
    c.close();
    const after = (await h.getHealth(srv.url)).body.messagesProcessed;
    r.priority = stats(lat['bench.prio']);
    r.ordinary = stats(lat['bench.ord']);
    r.load_xadd_per_s = Math.round(loadSent / secs);
    r.processed_per_s = Math.round((after - before) / secs);
    h.closeClient(sock);
  } finally {
    if (srv) await srv.stop();
    await redis.stop();
  }
  return r;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const h = loadHarness();
  const hard = setTimeout(() => {
    log(`hard timeout (${opts.timeout} s) reached`);
    process.exit(1);
  }, opts.timeout * 1000);
  const runs = [['streamio', opts.streamio]];
  if (opts.baseline) runs.push(['baseline', opts.baseline]);
  const results = [];
  try {
    for (const [name, bin] of runs) {
      log(`${name}: ${bin}`);
      results.push(await runOne(h, name, bin, opts));
    }
  } finally {
    h.closeAllClients();
    clearTimeout(hard);
  }
  process.stdout.write('server    stream    samples  median_ms  p90_ms  p99_ms  max_ms  load_xadd/s  processed/s\n');
  for (const r of results) {
    for (const k of ['priority', 'ordinary']) {
      const s = r[k];
      process.stdout.write(`${r.name.padEnd(9)} ${k.padEnd(9)} ${String(s.n).padStart(7)}  ${String(s.median_ms).padStart(9)}`
        + `  ${String(s.p90_ms).padStart(6)}  ${String(s.p99_ms).padStart(6)}  ${String(s.max_ms).padStart(6)}`
        + `  ${String(r.load_xadd_per_s).padStart(11)}  ${String(r.processed_per_s).padStart(11)}\n`);
    }
  }
  process.stdout.write(`${JSON.stringify({ load_streams: opts.loadStreams, seconds: opts.seconds, results })}\n`);
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`bench-priority: ${err.stack || err}\n`);
  process.exit(1);
});
