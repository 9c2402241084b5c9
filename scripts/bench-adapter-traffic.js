#!/usr/bin/env node
'use strict';
/*
 * Measures the Redis pub/sub traffic of a 4-server streamio cluster sharing 1000 rooms, in classic
 * mode (PUBLISH / PSUBSCRIBE: every server receives every broadcast) and in sharded mode
 * (SPUBLISH / SSUBSCRIBE per room: a server receives only the rooms it has clients in).
 *
 *   node scripts/bench-adapter-traffic.js --streamio build/release/streamio [--entries 5]
 *
 * Per mode: a private redis-server, 4 streamio servers (CLUSTER_WORKERS=1), one client per server
 * joined to 250 rooms of its own (room i belongs to server i % 4), 1000 streams. After a warm-up
 * entry per stream, it XADDs `entries` entries per stream, waits until every client got exactly
 * its share, and reports Redis' total_net_output_bytes and total_net_input_bytes over that phase. The stream reads, acks and
 * client deliveries are identical in both modes, so the difference is the pub/sub fan-out.
 * Everything runs on 127.0.0.1 and is stopped by PID at the end.
 */
const path = require('node:path');
const bench = require('./lib/bench-common');

const ROOMS = 1000;
const SERVERS = 4;

const log = bench.logger('bench-adapter-traffic');
const h = bench.loadHarness(log);

async function netBytes(redis) {
  const info = await redis.call('INFO', 'stats');
  return {
    out: Number(/total_net_output_bytes:(\d+)/.exec(info)[1]),
    in: Number(/total_net_input_bytes:(\d+)/.exec(info)[1]),
  };
}

// streamio_adapter_published_{total,bytes_total} summed over the servers: the messages' own size
async function published(servers) {
  let n = 0;
  let bytes = 0;
  for (const srv of servers) {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    n += Number(/^streamio_adapter_published_total (\d+)/m.exec(text)?.[1] ?? 0);
    bytes += Number(/^streamio_adapter_published_bytes_total (\d+)/m.exec(text)?.[1] ?? 0);
  }
  return { n, bytes };
}

async function run(mode, entries) {
  const redis = await h.startRedis();
  const servers = [];
  try {
    for (let s = 0; s < SERVERS; s++) {
      servers.push(await h.startStreamio({
        CLUSTER_WORKERS: '1',
        SOCKETIO_REDIS_ADAPTER: mode === 'sharded' ? 'sharded' : 'true',
        MAX_ROOMS_PER_SOCKET: String(ROOMS),
        // each client joins 250 rooms at once: past the default per-socket rate limits
        RATE_LIMIT_EVENTS_PER_SEC: '0',
        RATE_LIMIT_JOINS_PER_SEC: '0',
        LOG_LEVEL: 'warn',
      }, { redis }));
    }
    const rooms = Array.from({ length: ROOMS }, (_, i) => `traffic.room.${i}`);
    const clients = await Promise.all(servers.map((srv) => h.connectClient(srv.url)));
    const counts = clients.map(() => 0);
    clients.forEach((c, i) => c.on('room:message', () => { counts[i] += 1; }));
    await Promise.all(clients.map((c, s) => (async () => {
      for (let i = s; i < ROOMS; i += SERVERS) await h.joinRoom(c, rooms[i]);
    })()));
    const share = ROOMS / SERVERS;
    // warm-up: one entry per stream, so every server has discovered and reads every stream
    await Promise.all(rooms.map((r) => redis.call('XADD', r, '*', 'event', 'warm', 'data', '{}')));
    await h.waitUntil(() => counts.every((n) => n >= share), {
      timeout: 60000, interval: 100, message: 'warm-up deliveries',
    });
    await h.sleep(500);
    const before = await netBytes(redis);
    const pub0 = await published(servers);
    const t0 = Date.now();
    for (let j = 0; j < entries; j++) {
      await Promise.all(rooms.map((r) => redis.call('XADD', r, '*', 'event', 'bench', 'data', JSON.stringify({ j }))));
    }
    const want = share * (entries + 1);
    await h.waitUntil(() => counts.every((n) => n >= want), {
      timeout: 120000, interval: 100, message: `${want} deliveries per client (${counts})`,
    });
    await h.sleep(1000);
    const after = await netBytes(redis);
    const pub1 = await published(servers);
    const msgBytes = (pub1.bytes - pub0.bytes) / Math.max(1, pub1.n - pub0.n);
    const bytes = after.out - before.out;
    const inBytes = after.in - before.in;
    const exact = counts.every((n) => n === want);
    return { mode, bytes, inBytes, msgBytes, ms: Date.now() - t0, exact, counts };
  } finally {
    h.closeAllClients();
    for (const srv of servers) await srv.stop();
    await redis.stop();
  }
}

async function main() {
  const opts = bench.parseArgs('bench-adapter-traffic',
    'node scripts/bench-adapter-traffic.js [--streamio BIN] [--entries N]', process.argv.slice(2),
    { streamio: process.env.STREAMIO_BIN || path.join(bench.ROOT, 'build/release/streamio'), entries: 5 }, {
      '--streamio': { key: 'streamio', path: true, exists: true },
      '--entries': { key: 'entries', min: 1, max: 1000 },
    });
  process.env.STREAMIO_BIN = opts.streamio; // the harness starts $STREAMIO_BIN
  const { entries } = opts;
  const results = [];
  for (const mode of ['classic', 'sharded']) results.push(await run(mode, entries));
  const published = ROOMS * entries;
  for (const r of results) {
    console.log(`${r.mode.padEnd(8)} ${published} broadcasts over ${ROOMS} rooms / ${SERVERS} servers: `
      + `Redis output ${r.bytes} bytes (${(r.bytes / published).toFixed(1)} B per broadcast), `
      + `message ${r.msgBytes.toFixed(1)} B, `
      + `input ${r.inBytes} bytes (${(r.inBytes / published).toFixed(1)} B per broadcast, XADDs, reads and acks included), `
      + `deliveries exact: ${r.exact} ${JSON.stringify(r.counts)}`);
  }
  const [c, s] = results;
  console.log(`sharded dynamic saves ${c.bytes - s.bytes} bytes of Redis output `
    + `(${(100 * (c.bytes - s.bytes) / c.bytes).toFixed(1)}% of the classic total) for the same deliveries`);
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});
