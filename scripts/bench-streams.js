#!/usr/bin/env node
'use strict';
/*
 * Stream-scale benchmark (issue 6): streamio vs the Node anchor over one keyspace of many streams.
 *
 *   node scripts/bench-streams.js --streamio BIN --anchor DIR [--streams 1000000] [--active 1]
 *                                 [--idle-seconds 10] [--settle-seconds 5] [--timeout SECONDS]
 *
 * Starts its own redis-server and creates --streams stream keys (pipelined, 10,000 commands in
 * flight at most): --active percent of them got an entry just now, the others are empty streams
 * whose last entry was added two hours ago and deleted (`XADD k MAXLEN 0 <2 h ago>-<n>`), the
 * usual state of a quiet stream under the delete-after-delivery policy. Then, for each server in
 * turn (same Redis, same keys; one reading process each: streamio CLUSTER_WORKERS=1, the anchor
 * CLUSTER_ENABLED=false, whose /health then counts every stream):
 *   - discovery: time from start until /health reports every stream;
 *   - idle CPU: --settle-seconds after discovery (start-up work such as probes may still run
 *     then), --idle-seconds with no writes, CPU time of redis-server and of the server's whole
 *     process tree from /proc/<pid>/stat (utime + stime), as percent of one core;
 *   - new-stream latency: 5 times, a client joins a fresh room, the stream is created with XADD,
 *     time until the client receives the entry;
 *   - wake-up latency: the same for an existing quiet stream (empty, last entry 2 h ago).
 * Redis starts each run with notify-keyspace-events Et; streamio runs with
 * STREAM_KEYSPACE_EVENTS=true (its master adds g for del events and learns new streams from them).
 * Redis' INFO commandstats over the idle window (reset at its start) and the CPU of each process
 * of the server's tree are reported too (idle_redis_cmds, idle_cpu_pct_by_pid: the first pid is
 * the server's own, e.g. streamio's master).
 * Prints one table and one JSON line. Everything it starts is stopped; a hard timeout bounds it.
 */
const fs = require('node:fs');
const path = require('node:path');
const bench = require('./lib/bench-common');

const PREFIX = 'bench.s.';
const log = bench.logger('bench-streams');

function parseArgs(argv) {
  const o = bench.parseArgs('bench-streams', 'node scripts/bench-streams.js [--streamio BIN] [--anchor DIR] '
    + '[--streams N] [--active PERCENT] [--idle-seconds S] [--settle-seconds S] [--timeout SECONDS]', argv,
  { streams: 1000000, active: 1, idle: 10, settle: 5, timeout: 1800 }, {
    '--streamio': { key: 'streamio', path: true, exists: true },
    '--anchor': { key: 'anchor', path: true, exists: true },
    '--streams': { key: 'streams', min: 100, max: 5000000 },
    '--active': { key: 'active', min: 0, max: 100 },
    '--idle-seconds': { key: 'idle', min: 2, max: 600 },
    '--settle-seconds': { key: 'settle', min: 0, max: 3600 },
    '--timeout': { key: 'timeout', min: 60, max: 7200 },
  });
  if (!o.streamio && !o.anchor) o.usage('give --streamio BIN and/or --anchor DIR');
  return o;
}

const { cpuSeconds: cpuOf, processTree: tree, commandstats } = bench;
const cpuTree = (pids) => pids.reduce((a, p) => a + cpuOf(p), 0);

async function createStreams(h, redis, n, activePct) {
  const c = await h.RedisClient.connect(redis.port);
  const old = Date.now() - 2 * 3600 * 1000;
  const every = activePct > 0 ? Math.round(100 / activePct) : 0;
  const t0 = Date.now();
  let inflight = [];
  for (let i = 0; i < n; i++) {
    const key = `${PREFIX}${i}`;
    const active = every && i % every === 0;
    inflight.push(active
      ? c.callTimeout(60000, 'XADD', key, '*', 'event', 'seed', 'data', String(i))
      : c.callTimeout(60000, 'XADD', key, 'MAXLEN', '0', `${old}-${i + 1}`, 'event', 'old', 'data', '0'));
    if (inflight.length === 10000) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  c.close();
  log(`created ${n} streams (${activePct}% active) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function latency(h, srv, redisPort, makeKey, firstEntry) {
  const c = await h.RedisClient.connect(redisPort);
  const out = [];
  try {
    for (let k = 0; k < 5; k++) {
      const key = makeKey(k);
      if (firstEntry) await firstEntry(c, key);
      const sock = await h.connectClient(srv.url);
      await h.joinRoom(sock, key);
      const got = new Promise((resolve) => sock.on('room:message', (m) => {
        if (m.event === 'probe') resolve();
      }));
      const t = Date.now();
      await c.call('XADD', key, '*', 'event', 'probe', 'data', '1');
      await h.withDeadline(got, 120000, `entry on ${key}`);
      out.push(Date.now() - t);
      h.closeClient(sock);
    }
  } finally {
    c.close();
  }
  out.sort((a, b) => a - b);
  return { median_ms: out[2], max_ms: out[4] };
}

async function runOne(h, s, redis, opts) {
  const port = await h.freePort();
  const env = {
    ...h.baseEnv(), REDIS_HOST: h.HOST, REDIS_PORT: String(redis.port), HOST: h.HOST,
    PORT: String(port), LOG_LEVEL: 'warn', ...s.env,
  };
  const t0 = Date.now();
  const srv = await h.startServer({ cmd: s.cmd, args: s.args, env, port, name: s.name, timeout: 60000 });
  const r = {};
  try {
    const want = opts.streams;
    await h.waitUntil(async () => {
      const { body } = await h.getHealth(srv.url, { timeout: 5000 });
      return body && body.streams >= want;
    }, { timeout: 600000, interval: 200, message: `${s.name} to report ${want} streams` });
    r.discovery_s = Math.round((Date.now() - t0) / 100) / 10;
    log(`${s.name}: every stream discovered after ${r.discovery_s} s`);
    await h.sleep(opts.settle * 1000); // let start-up work (probes, first reads) settle
    const pids = tree(srv.pid);
    const rs0 = cpuOf(redis.handle.pid);
    const ss0 = cpuTree(pids);
    const each0 = pids.map(cpuOf);
    await redis.call('CONFIG', 'RESETSTAT');
    const w0 = Date.now();
    await h.sleep(opts.idle * 1000);
    const secs = (Date.now() - w0) / 1000;
    r.idle_redis_cmds = commandstats(await redis.call('INFO', 'commandstats'));
    r.idle_redis_cpu_pct = Math.round(((cpuOf(redis.handle.pid) - rs0) / secs) * 1000) / 10;
    r.idle_server_cpu_pct = Math.round(((cpuTree(pids) - ss0) / secs) * 1000) / 10;
    r.idle_cpu_pct_by_pid = Object.fromEntries(pids.map((p, i) => [p,
      Math.round(((cpuOf(p) - each0[i]) / secs) * 1000) / 10]));
    const busiest = Object.entries(r.idle_redis_cmds).sort((a, b) => b[1].usec - a[1].usec).slice(0, 6)
      .map(([n, c]) => `${n} ${(c.calls / secs).toFixed(0)}/s ${(c.usec / secs / 10000).toFixed(1)}%`);
    log(`${s.name}: idle CPU redis ${r.idle_redis_cpu_pct}%, server ${r.idle_server_cpu_pct}% `
      + `(by pid ${JSON.stringify(r.idle_cpu_pct_by_pid)}); redis commands/s and % of a core: ${busiest.join(', ')}`);
    const tag = `${s.name}.${Date.now()}`;
    const nl = await latency(h, srv, redis.port, (k) => `${PREFIX}new.${tag}.${k}`);
    r.new_stream_median_ms = nl.median_ms;
    r.new_stream_max_ms = nl.max_ms;
    const every = opts.active > 0 ? Math.round(100 / opts.active) : 0;
    const quiet = (k) => `${PREFIX}${(every ? k * every + 1 : k) + s.offset}`;
    const wl = await latency(h, srv, redis.port, quiet);
    r.quiet_wake_median_ms = wl.median_ms;
    r.quiet_wake_max_ms = wl.max_ms;
    log(`${s.name}: new stream ${nl.median_ms} ms (max ${nl.max_ms}), quiet stream ${wl.median_ms} ms (max ${wl.max_ms})`);
  } finally {
    await srv.stop();
  }
  return r;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const h = bench.loadHarness(log);
  let redis = null;
  let anchorDir = null;
  const hard = setTimeout(async () => {
    log(`hard timeout (${opts.timeout} s) reached`);
    h.closeAllClients();
    if (redis) await redis.stop().catch(() => {});
    process.exit(1);
  }, opts.timeout * 1000);
  const results = {};
  try {
    if (opts.anchor) anchorDir = bench.prepareAnchor(opts.anchor, log);
    redis = await h.startRedis({ timeout: 20000 });
    await createStreams(h, redis, opts.streams, opts.active);
    const servers = [];
    if (opts.streamio) {
      servers.push({ name: 'streamio', cmd: opts.streamio, args: [], offset: 10, env: { CLUSTER_WORKERS: '1', STREAM_KEYSPACE_EVENTS: 'true' } });
    }
    if (anchorDir) {
      servers.push({ name: 'anchor', cmd: process.execPath, args: [path.join(anchorDir, 'server.js')], offset: 20,
        env: { CLUSTER_ENABLED: 'false' } });
    }
    for (const s of servers) {
      try {
        log(`${s.name}: starting`);
        // the same flags for each server: streamio (STREAM_KEYSPACE_EVENTS=true) adds g itself
        await redis.call('CONFIG', 'SET', 'notify-keyspace-events', 'Et');
        results[s.name] = await runOne(h, s, redis, opts);
      } catch (err) {
        log(`${s.name}: ${err.message}`);
        results[s.name] = { error: err.message.split('\n')[0] };
      }
    }
  } finally {
    h.closeAllClients();
    if (redis) await redis.stop().catch(() => {});
    if (anchorDir) fs.rmSync(anchorDir, { recursive: true, force: true });
    clearTimeout(hard);
  }
  const cols = ['discovery_s', 'idle_redis_cpu_pct', 'idle_server_cpu_pct', 'new_stream_median_ms',
    'new_stream_max_ms', 'quiet_wake_median_ms', 'quiet_wake_max_ms'];
  process.stdout.write(`server    ${cols.join('  ')}\n`);
  for (const [name, r] of Object.entries(results)) {
    process.stdout.write(`${name.padEnd(9)} ${r.error ? `error: ${r.error}`
      : cols.map((c) => String(r[c]).padStart(c.length)).join('  ')}\n`);
  }
  process.stdout.write(`${JSON.stringify({ streams: opts.streams, active_pct: opts.active, servers: results })}\n`);
  return Object.values(results).some((r) => r.error) ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`bench-streams: ${err.stack || err}\n`);
  process.exit(1);
});
