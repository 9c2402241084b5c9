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
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const bench = require('./lib/bench-common');

const log = bench.logger('bench-cluster');

function parseArgs(argv) {
  return bench.parseArgs('bench-cluster', 'node scripts/bench-cluster.js [--streamio BIN] [--clients N] '
    + '[--rooms N] [--entries N] [--timeout SECONDS]', argv,
  { streamio: path.join(bench.ROOT, 'build', 'release', 'streamio'), clients: 1000, rooms: 100, entries: 20000, timeout: 600 }, {
    '--streamio': { key: 'streamio', path: true, exists: true },
    '--clients': { key: 'clients', min: 1, max: 100000 },
    '--rooms': { key: 'rooms', min: 1, max: 100000 },
    '--entries': { key: 'entries', min: 1, max: 10000000 },
    '--timeout': { key: 'timeout', min: 10, max: 7200 },
  });
}

// utime + stime of pid in microseconds
function cpuUs(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 1e6 / 100; // fields 14 and 15, USER_HZ 100
  } catch {
    return 0;
  }
}

function run(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function commandCalls(info) {
  const calls = {};
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) calls[m[1]] = (calls[m[1]] || 0) + Number(m[2]);
  }
  return calls;
}

async function one(h, topo, o) {
  const { startCluster } = require(path.join(bench.ROOT, 'tests', 'integration', 'lib', 'redis-topologies.js'));
  const nodes = [];
  let redis;
  if (topo === 'cluster') {
    redis = await startCluster({ masters: 3, replicas: 0 });
    nodes.push(...redis.nodes);
  } else {
    redis = await h.startRedis();
    nodes.push(redis);
  }
  const port = nodes[0].port;
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
    const cpu0 = pids.reduce((a, p) => a + cpuUs(p), 0);
    const loadgen = path.join(path.dirname(o.streamio), 'bench', 'loadgen');
    const exec = [process.execPath, producer, ...pargs, '--count', String(o.entries)].join(' ');
    const out = await run(loadgen, ['--port', String(srv.port), '--server-pid', String(srv.pid),
      '--redis-pid', String(pids[0]), '--rooms', String(o.rooms), '--clients', String(o.clients),
      '--entries', String(o.entries), '--timeout', String(o.timeout), '--label', `streamio-${topo}`,
      '--exec', exec], (o.timeout + 60) * 1000);
    const cpu1 = pids.reduce((a, p) => a + cpuUs(p), 0);
    const r = JSON.parse(out.trim().split('\n').pop());
    const calls = {};
    for (const n of nodes) {
      for (const [k, v] of Object.entries(commandCalls(await n.call('INFO', 'commandstats')))) calls[k] = (calls[k] || 0) + v;
    }
    const all = Object.values(calls).reduce((a, b) => a + b, 0);
    const xadd = calls.xadd || 0;
    return {
      scenario: 'cluster', topology: topo, redis_nodes: nodes.length, clients: o.clients, rooms: o.rooms,
      entries: r.entries, received: r.received, lost: r.lost, dups: r.dups,
      entries_per_s: r.duration_s > 0 ? Math.round(r.entries / r.duration_s) : 0,
      deliveries_per_s: r.deliveries_per_s, lat_p50_ms: r.lat_p50_ms, lat_p99_ms: r.lat_p99_ms,
      server_cpu_us_per_delivery: r.server_cpu_us_per_delivery,
      redis_cpu_us_per_entry: r.entries ? (cpu1 - cpu0) / r.entries : 0,
      redis_cmds_per_entry: r.entries ? (all - xadd) / r.entries : 0,
      redis_cmds: calls,
    };
  } finally {
    if (srv) await srv.stop();
    await redis.stop();
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  process.env.STREAMIO_BIN = o.streamio; // what the harness starts
  const h = bench.loadHarness(log);
  const rows = [];
  for (const topo of ['single', 'cluster']) {
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
