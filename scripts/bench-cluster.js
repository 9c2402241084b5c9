#!/usr/bin/env node
'use strict';
/*
 * Redis Cluster benchmark (issue 13): the same streamio fan-out on one redis-server and on a
 * 3-master Redis Cluster (no replicas), one after the other on this box, with a max-rate
 * producer and --clients WebSocket clients in --rooms rooms (bench/loadgen).
 *
 *   node scripts/bench-cluster.js [--streamio BIN] [--clients 1000] [--rooms 100]
 *                                 [--entries 20000] [--timeout SECONDS]
 *
 * For each topology: Redis is started (redis-topologies.js of the test suite: the cluster is
 * made with redis-cli --cluster create), streamio with CLUSTER_WORKERS=1 and
 * STREAM_KEYSPACE_EVENTS=true (REDIS_CLUSTER_NODES for the cluster), the streams are warmed up
 * (discovered and read once), then loadgen connects the clients and runs the producer
 * (scripts/lib/bench-producer.js, the npm redis client: one client type for both topologies).
 * Reported per topology: entries/s and deliveries/s, delivery latency, streamio CPU per delivery
 * (loadgen), Redis CPU per entry (utime + stime of every redis-server from /proc, summed over
 * the nodes) and Redis commands per entry besides the producer's XADD (INFO commandstats summed
 * over the nodes, reset after the warm-up: what streamio costs Redis; pipelined commands count
 * one each). Prints a table and one JSON line per topology. Everything it starts is stopped.
 *
 * --streams N (the 100k mode: --streams 100000) measures streams at scale instead, on each
 * topology in turn: N stream keys named bench.r<i> (spread over the 16384 slots by their CRC16),
 * --active percent of them with an entry just now, the others empty with their last entry two
 * hours ago (as the delete policy leaves a quiet stream). Reported, Redis CPU summed over the
 * nodes from /proc as % of one core:
 *   - idle Redis alone: --idle-seconds with the keys but no streamio (the cluster bus' own cost);
 *   - start-up: from streamio's start until /health counts every stream, Redis commands by name
 *     (the catch-up XREADs among them);
 *   - idle: after --settle-seconds, --idle-seconds with no writes, Redis CPU and commands, and the
 *     CPU per idle stream above Redis alone;
 *   - new stream: 5 times, a client joins a fresh room, XADD creates its stream, ms until received;
 *   - paced: loadgen's --clients in --rooms rooms (streams bench.r0...) and the producer paced at
 *     --rate entries/s for --entries: entries lost and delivered twice (exact counts), latency,
 *     Redis CPU and commands per entry besides the XADD (INFO commandstats deltas / entries).
 *   node scripts/bench-cluster.js --streams 100000 [--active 1] [--idle-seconds 20]
 *                                 [--settle-seconds 5] [--rate 1000] [--entries 10000]
 *                                 [--clients 100] [--rooms 100] [--topologies single,cluster]
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const bench = require('./lib/bench-common');

const log = bench.logger('bench-cluster');

function parseArgs(argv) {
  const o = bench.parseArgs('bench-cluster', 'node scripts/bench-cluster.js [--streamio BIN] [--clients N] '
    + '[--rooms N] [--entries N] [--timeout SECONDS] [--streams N [--active PERCENT] [--idle-seconds S] '
    + '[--settle-seconds S] [--rate N]] [--topologies single,cluster]', argv,
  { streamio: path.join(bench.ROOT, 'build', 'release', 'streamio'), clients: 1000, rooms: 100, entries: 20000, timeout: 600,
    streams: 0, active: 1, idle: 20, settle: 5, rate: 1000, topologies: ['single', 'cluster'] }, {
    '--streamio': { key: 'streamio', path: true, exists: true },
    '--clients': { key: 'clients', min: 1, max: 100000 },
    '--rooms': { key: 'rooms', min: 1, max: 100000 },
    '--entries': { key: 'entries', min: 1, max: 10000000 },
    '--timeout': { key: 'timeout', min: 10, max: 7200 },
    '--streams': { key: 'streams', min: 100, max: 1000000 },
    '--active': { key: 'active', min: 0, max: 100 },
    '--idle-seconds': { key: 'idle', min: 2, max: 600 },
    '--settle-seconds': { key: 'settle', min: 0, max: 600 },
    '--rate': { key: 'rate', min: 1, max: 100000 },
    '--topologies': { key: 'topologies', list: ['single', 'cluster'] },
  });
  if (o.streams && o.rooms > o.streams) o.usage('--rooms must not exceed --streams');
  return o;
}

const { cpuSeconds, processTree, commandstats } = bench;
const cpuOf = (pids) => pids.reduce((a, p) => a + cpuSeconds(p), 0);

function run(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// INFO commandstats summed over the nodes -> { name: calls }
async function commandCalls(nodes) {
  const calls = {};
  for (const n of nodes) {
    for (const [k, v] of Object.entries(commandstats(await n.call('INFO', 'commandstats')))) calls[k] = (calls[k] || 0) + v.calls;
  }
  return calls;
}

// Redis on `topo`: { redis (to stop), nodes, port (a seed) }.
async function startTopology(h, topo) {
  if (topo === 'cluster') {
    const { startCluster } = require(path.join(bench.ROOT, 'tests', 'integration', 'lib', 'redis-topologies.js'));
    const redis = await startCluster({ masters: 3, replicas: 0 });
    return { redis, nodes: redis.nodes, port: redis.nodes[0].port };
  }
  const redis = await h.startRedis();
  return { redis, nodes: [redis], port: redis.port };
}

async function one(h, topo, o) {
  const { redis, nodes, port } = await startTopology(h, topo);
  const env = {
    REDIS_PORT: String(port), CLUSTER_WORKERS: '1', STREAM_PATTERN: 'bench.r*', STREAM_KEYSPACE_EVENTS: 'true',
    LOG_LEVEL: 'warn', DISCOVERY_INTERVAL: '1000',
  };
  if (topo === 'cluster') env.REDIS_CLUSTER_NODES = `127.0.0.1:${port}`;
  let srv;
  try {
    srv = await h.startStreamio(env);
    const producer = path.join(__dirname, 'lib', 'bench-producer.js');
    const pargs = ['--port', String(port), ...(topo === 'cluster' ? ['--cluster'] : []), '--rooms', String(o.rooms)];
    await run(process.execPath, [producer, ...pargs, '--warm', '--timeout', '60'], 90000);
    for (const n of nodes) await n.call('CONFIG', 'RESETSTAT');
    const pids = nodes.map((n) => n.handle.pid);
    const cpu0 = cpuOf(pids);
    const loadgen = path.join(path.dirname(o.streamio), 'bench', 'loadgen');
    const exec = [process.execPath, producer, ...pargs, '--count', String(o.entries)].join(' ');
    const out = await run(loadgen, ['--port', String(srv.port), '--server-pid', String(srv.pid),
      '--redis-pid', String(pids[0]), '--rooms', String(o.rooms), '--clients', String(o.clients),
      '--entries', String(o.entries), '--timeout', String(o.timeout), '--label', `streamio-${topo}`,
      '--exec', exec], (o.timeout + 60) * 1000);
    const cpu1 = cpuOf(pids);
    const r = JSON.parse(out.trim().split('\n').pop());
    const calls = await commandCalls(nodes);
    const all = Object.values(calls).reduce((a, b) => a + b, 0);
    const xadd = calls.xadd || 0;
    return {
      scenario: 'cluster', topology: topo, redis_nodes: nodes.length, clients: o.clients, rooms: o.rooms,
      entries: r.entries, received: r.received, lost: r.lost, dups: r.dups,
      entries_per_s: r.duration_s > 0 ? Math.round(r.entries / r.duration_s) : 0,
      deliveries_per_s: r.deliveries_per_s, lat_p50_ms: r.lat_p50_ms, lat_p99_ms: r.lat_p99_ms,
      server_cpu_us_per_delivery: r.server_cpu_us_per_delivery,
      redis_cpu_us_per_entry: r.entries ? ((cpu1 - cpu0) * 1e6) / r.entries : 0,
      redis_cmds_per_entry: r.entries ? (all - xadd) / r.entries : 0,
      redis_cmds: calls,
    };
  } finally {
    if (srv) await srv.stop();
    await redis.stop();
  }
}

// A client of the npm `redis` package on `topo` (createCluster routes by slot, pipelines per node).
async function dataClient(topo, port) {
  const { createClient, createCluster } = require(path.join(bench.ROOT, 'tests', 'integration', 'node_modules', 'redis'));
  const url = `redis://127.0.0.1:${port}`;
  const c = topo === 'cluster' ? createCluster({ rootNodes: [{ url }] }) : createClient({ url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

// bench.r0 ... bench.r<n-1>: every (100 / activePct)th with an entry now, the others empty, their
// last entry two hours ago. At most 5000 XADDs in flight.
async function createStreams(c, n, activePct) {
  const old = Date.now() - 2 * 3600 * 1000;
  const every = activePct > 0 ? Math.round(100 / activePct) : 0;
  const trim = { TRIM: { strategy: 'MAXLEN', threshold: 0 } };
  let inflight = [];
  for (let i = 0; i < n; i++) {
    const key = `bench.r${i}`;
    inflight.push(every && i % every === 0 ? c.xAdd(key, '*', { event: 'seed', data: String(i) })
      : c.xAdd(key, `${old}-${i + 1}`, { event: 'old', data: '0' }, trim));
    if (inflight.length === 5000) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
}

// CPU of `pids` over `secs` seconds, as % of one core, and what ran meanwhile on `nodes`.
async function window(nodes, pids, secs) {
  for (const n of nodes) await n.call('CONFIG', 'RESETSTAT');
  const c0 = cpuOf(pids);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, secs * 1000));
  const s = (Date.now() - t0) / 1000;
  return { cpu_pct: Math.round(((cpuOf(pids) - c0) / s) * 1000) / 10, calls: await commandCalls(nodes) };
}

// 5 times: a client joins a fresh room, XADD creates its stream; ms until the client has it.
async function newStreamLatency(h, srv, c, tag) {
  const out = [];
  for (let k = 0; k < 5; k++) {
    const key = `bench.r.new.${tag}.${k}`;
    const sock = await h.connectClient(srv.url);
    try {
      await h.joinRoom(sock, key);
      const got = new Promise((resolve) => sock.on('room:message', (m) => {
        if (m.event === 'probe') resolve();
      }));
      const t = Date.now();
      await c.xAdd(key, '*', { event: 'probe', data: '1' });
      await h.withDeadline(got, 120000, `entry on ${key}`);
      out.push(Date.now() - t);
    } finally {
      h.closeClient(sock);
    }
  }
  out.sort((a, b) => a - b);
  return { median_ms: out[2], max_ms: out[4] };
}

// --streams: idle cost, start-up, new-stream latency and a paced load over many streams.
async function scaleOne(h, topo, o) {
  const { redis, nodes, port } = await startTopology(h, topo);
  const pids = nodes.map((n) => n.handle.pid);
  const r = { scenario: 'cluster-streams', topology: topo, redis_nodes: nodes.length, streams: o.streams, active_pct: o.active };
  let srv;
  let c;
  try {
    c = await dataClient(topo, port);
    let t = Date.now();
    await createStreams(c, o.streams, o.active);
    log(`${topo}: ${o.streams} streams created in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const alone = await window(nodes, pids, o.idle);
    r.redis_alone_cpu_pct = alone.cpu_pct;
    for (const n of nodes) await n.call('CONFIG', 'RESETSTAT');
    const env = {
      REDIS_PORT: String(port), CLUSTER_WORKERS: '1', STREAM_PATTERN: 'bench.r*', STREAM_KEYSPACE_EVENTS: 'true',
      LOG_LEVEL: 'warn', DISCOVERY_INTERVAL: '1000',
    };
    if (topo === 'cluster') env.REDIS_CLUSTER_NODES = `127.0.0.1:${port}`;
    t = Date.now();
    srv = await h.startStreamio(env, { timeout: 120000 });
    await h.waitUntil(async () => {
      const { body } = await h.getHealth(srv.url, { timeout: 5000 });
      return body && body.streams >= o.streams;
    }, { timeout: 600000, interval: 200, message: `streamio to report ${o.streams} streams` });
    r.discovery_s = Math.round((Date.now() - t) / 100) / 10;
    await new Promise((res) => setTimeout(res, o.settle * 1000));
    r.startup_redis_cmds = await commandCalls(nodes);
    const idle = await window(nodes, pids, o.idle);
    r.idle_redis_cpu_pct = idle.cpu_pct;
    r.idle_redis_cmds = idle.calls;
    // Redis CPU that idle streams cost, per stream: ns of CPU per second
    r.idle_redis_ns_per_stream_s = Math.round(((idle.cpu_pct - alone.cpu_pct) / 100) * 1e9 / o.streams * 100) / 100;
    log(`${topo}: discovered in ${r.discovery_s} s; idle Redis ${idle.cpu_pct}% (alone ${alone.cpu_pct}%), `
      + `commands ${JSON.stringify(idle.calls)}`);
    const nl = await newStreamLatency(h, srv, c, `${topo}.${Date.now()}`);
    r.new_stream_median_ms = nl.median_ms;
    r.new_stream_max_ms = nl.max_ms;
    for (const n of nodes) await n.call('CONFIG', 'RESETSTAT');
    const cpu0 = cpuOf(pids);
    const loadgen = path.join(path.dirname(o.streamio), 'bench', 'loadgen');
    const producer = path.join(__dirname, 'lib', 'bench-producer.js');
    const exec = [process.execPath, producer, '--port', String(port), ...(topo === 'cluster' ? ['--cluster'] : []),
      '--rooms', String(o.rooms), '--count', String(o.entries), '--rate', String(o.rate)].join(' ');
    const out = await run(loadgen, ['--port', String(srv.port), '--server-pid', String(srv.pid),
      '--redis-pid', String(pids[0]), '--rooms', String(o.rooms), '--clients', String(o.clients),
      '--entries', String(o.entries), '--timeout', String(o.timeout), '--label', `streamio-${topo}`,
      '--exec', exec], (o.timeout + 60) * 1000);
    const p = JSON.parse(out.trim().split('\n').pop());
    const calls = await commandCalls(nodes);
    const all = Object.values(calls).reduce((a, b) => a + b, 0);
    Object.assign(r, {
      paced_rate: o.rate, clients: o.clients, rooms: o.rooms, entries: p.entries, received: p.received, lost: p.lost,
      dups: p.dups, lat_p50_ms: p.lat_p50_ms, lat_p99_ms: p.lat_p99_ms,
      redis_cpu_us_per_entry: p.entries ? Math.round(((cpuOf(pids) - cpu0) * 1e6) / p.entries * 10) / 10 : 0,
      redis_cmds_per_entry: p.entries ? Math.round(((all - (calls.xadd || 0)) / p.entries) * 1000) / 1000 : 0,
      paced_redis_cmds: calls,
    });
  } finally {
    if (c) await c.quit().catch(() => {});
    if (srv) await srv.stop();
    await redis.stop();
  }
  return r;
}

async function scaleMain(h, o) {
  const rows = [];
  for (const topo of o.topologies) {
    log(`--- ${topo}: ${o.streams} streams`);
    rows.push(await scaleOne(h, topo, o));
  }
  const cols = ['discovery_s', 'redis_alone_cpu_pct', 'idle_redis_cpu_pct', 'idle_redis_ns_per_stream_s',
    'new_stream_median_ms', 'new_stream_max_ms', 'lat_p50_ms', 'redis_cpu_us_per_entry', 'redis_cmds_per_entry', 'lost', 'dups'];
  process.stderr.write(`\ntopology  ${cols.join('  ')}\n`);
  for (const r of rows) process.stderr.write(`${r.topology.padEnd(9)} ${cols.map((k) => String(r[k]).padStart(k.length)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.env.STREAMIO_BIN = o.streamio; // what the harness starts
  const h = bench.loadHarness(log);
  const hard = setTimeout(() => {
    log(`hard timeout (${o.timeout * 3} s) reached`);
    process.exit(1); // the harness stops what it started on exit
  }, o.timeout * 3 * 1000);
  if (o.streams) {
    await scaleMain(h, o);
    clearTimeout(hard);
    process.exit(0);
  }
  const rows = [];
  for (const topo of o.topologies) {
    log(`--- ${topo}`);
    rows.push(await one(h, topo, o));
  }
  const f = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : String(v));
  process.stderr.write(`\ntopology  entries/s  deliveries/s  p50 ms  p99 ms  streamio us/delivery  redis us/entry  redis cmds/entry  lost  dups\n`);
  for (const r of rows) {
    process.stderr.write(`${r.topology.padEnd(9)} ${String(r.entries_per_s).padStart(9)}  ${String(r.deliveries_per_s).padStart(12)}  `
      + `${f(r.lat_p50_ms, 2).padStart(6)}  ${f(r.lat_p99_ms, 2).padStart(6)}  ${f(r.server_cpu_us_per_delivery, 3).padStart(20)}  `
      + `${f(r.redis_cpu_us_per_entry).padStart(14)}  ${f(r.redis_cmds_per_entry, 2).padStart(16)}  ${String(r.lost).padStart(4)}  ${String(r.dups).padStart(4)}\n`);
  }
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0); // the harness keeps nothing running: every process was stopped above
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
