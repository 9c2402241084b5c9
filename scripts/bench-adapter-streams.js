#!/usr/bin/env node
'use strict';
/*
 * What SOCKETIO_REDIS_ADAPTER=streams costs Redis next to the classic adapter, in one run: the
 * seed 003 shape, 3 streamio servers on one Redis, each with clients in rooms of its own.
 *
 *   node scripts/bench-adapter-streams.js --streamio build/release/streamio [--rooms 300]
 *        [--entries 20] [--workers 1]
 *
 * Per mode (classic, then streams): a private redis-server, 3 streamio servers (CLUSTER_WORKERS
 * = --workers), one client per server joined to rooms/3 rooms of its own, `rooms` streams. After a
 * warm-up entry per stream it XADDs `entries` entries per stream (the broadcasts), waits until
 * every client got exactly its share, and reports over that phase: Redis CPU (user + sys from
 * /proc/<pid>/stat of the redis-server), Redis network bytes in and out (INFO stats), per
 * broadcast, and the time of the commands that account for them (INFO commandstats). The reads, acks and
 * deliveries of the rooms' streams are the same in both modes; the difference is the adapter:
 * PUBLISH to every server's PSUBSCRIBE, or XADD to the adapter's stream read by every worker with
 * XREAD. Everything runs on 127.0.0.1 and is stopped by PID at the end.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const bench = require('./lib/bench-common');

const SERVERS = 3;
const log = bench.logger('bench-adapter-streams');
const h = bench.loadHarness(log);
const TICK = (() => {
  try {
    return Number(require('node:child_process').execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
  } catch {
    return 100;
  }
})();

// CPU seconds (user + system) the process has used so far.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime: fields 14, 15 of stat(5)
}

async function stats(redis) {
  const info = await redis.call('INFO', 'stats');
  const num = (k) => Number(new RegExp(`${k}:(\\d+)`).exec(info)[1]);
  const cmds = {};
  for (const m of (await redis.call('INFO', 'commandstats')).matchAll(/cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/g)) {
    cmds[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return { cpu: cpuSeconds(redis.handle.pid), in: num('total_net_input_bytes'), out: num('total_net_output_bytes'), cmds };
}

async function run(mode, o) {
  const redis = await h.startRedis();
  const servers = [];
  try {
    for (let s = 0; s < SERVERS; s++) {
      servers.push(await h.startStreamio({
        CLUSTER_WORKERS: String(o.workers),
        SOCKETIO_REDIS_ADAPTER: mode === 'streams' ? 'streams' : 'true',
        STREAM_PATTERN: 'bench.room.*',
        MAX_ROOMS_PER_SOCKET: String(o.rooms),
        RATE_LIMIT_EVENTS_PER_SEC: '0', // each client joins rooms/3 rooms at once
        RATE_LIMIT_JOINS_PER_SEC: '0',
        LOG_LEVEL: 'warn',
      }, { redis }));
    }
    const rooms = Array.from({ length: o.rooms }, (_, i) => `bench.room.${i}`);
    const clients = await Promise.all(servers.map((srv) => h.connectClient(srv.url)));
    const counts = clients.map(() => 0);
    clients.forEach((c, i) => c.on('room:message', () => { counts[i] += 1; }));
    await Promise.all(clients.map((c, s) => (async () => {
      for (let i = s; i < o.rooms; i += SERVERS) await h.joinRoom(c, rooms[i]);
    })()));
    const share = (s) => Math.ceil((o.rooms - s) / SERVERS);
    await Promise.all(rooms.map((r) => redis.call('XADD', r, '*', 'event', 'warm', 'data', '{}')));
    await h.waitUntil(() => counts.every((n, s) => n >= share(s)), {
      timeout: 60000, interval: 100, message: `warm-up deliveries (${counts})`,
    });
    await h.sleep(1000);
    const before = await stats(redis);
    const t0 = Date.now();
    for (let j = 0; j < o.entries; j++) {
      await Promise.all(rooms.map((r) => redis.call('XADD', r, '*', 'event', 'bench', 'data', JSON.stringify({ j, text: 'x'.repeat(64) }))));
    }
    const want = (s) => share(s) * (o.entries + 1);
    await h.waitUntil(() => counts.every((n, s) => n >= want(s)), {
      timeout: 180000, interval: 100, message: `deliveries (${counts})`,
    });
    const ms = Date.now() - t0;
    await h.sleep(1000);
    const after = await stats(redis);
    const cmds = Object.entries(after.cmds).map(([name, a]) => {
      const b = before.cmds[name] || { calls: 0, usec: 0 };
      return { name, calls: a.calls - b.calls, usec: a.usec - b.usec };
    }).filter((c) => c.calls > 0).sort((x, y) => y.usec - x.usec);
    return {
      mode,
      cpu: after.cpu - before.cpu,
      in: after.in - before.in,
      out: after.out - before.out,
      ms,
      exact: counts.every((n, s) => n === want(s)),
      cmds,
    };
  } finally {
    h.closeAllClients();
    for (const srv of servers) await srv.stop();
    await redis.stop();
  }
}

async function main() {
  const opts = bench.parseArgs('bench-adapter-streams',
    'node scripts/bench-adapter-streams.js [--streamio BIN] [--rooms N] [--entries N] [--workers N]',
    process.argv.slice(2),
    { streamio: process.env.STREAMIO_BIN || path.join(bench.ROOT, 'build/release/streamio'), rooms: 300, entries: 20, workers: 1 }, {
      '--streamio': { key: 'streamio', path: true, exists: true },
      '--rooms': { key: 'rooms', min: SERVERS, max: 100000 },
      '--entries': { key: 'entries', min: 1, max: 10000 },
      '--workers': { key: 'workers', min: 1, max: 16 },
    });
  process.env.STREAMIO_BIN = opts.streamio; // the harness starts $STREAMIO_BIN
  const n = opts.rooms * opts.entries;
  log(`${os.cpus().length} CPUs, ${SERVERS} servers x ${opts.workers} workers, ${n} broadcasts`);
  const results = [];
  for (const mode of ['classic', 'streams']) results.push(await run(mode, opts));
  for (const r of results) {
    const usec = r.cmds.reduce((a, x) => a + x.usec, 0);
    r.usec = usec;
    console.log(`${r.mode.padEnd(8)} ${n} broadcasts, ${SERVERS} servers x ${opts.workers} workers: `
      + `Redis CPU ${(1e6 * r.cpu / n).toFixed(1)} us (commands ${(usec / n).toFixed(1)} us), in ${(r.in / n).toFixed(0)} B, `
      + `out ${(r.out / n).toFixed(0)} B per broadcast (${r.ms} ms; deliveries exact: ${r.exact})`);
    console.log(`         top commands: ${r.cmds.slice(0, 6).map((c) => `${c.name} ${c.calls}x ${(c.usec / n).toFixed(1)}us`).join(', ')}`);
  }
  const [c, s] = results;
  console.log(`streams / classic per broadcast: Redis CPU x${(s.cpu / c.cpu).toFixed(2)} `
    + `(commands x${(s.usec / c.usec).toFixed(2)}), `
    + `bytes in x${(s.in / c.in).toFixed(2)}, bytes out x${(s.out / c.out).toFixed(2)}`);
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});
