#!/usr/bin/env node
'use strict';
/*
 * Benchmark of the back-end features (issue 17): client events into a stream, and presence.
 *
 *   node scripts/bench-bridge.js --streamio BIN [--clients 20] [--events 20000] [--window 16]
 *                                [--presence 2000] [--node 1] [--timeout SECONDS]
 *
 * Starts its own redis-server. Then:
 *  1. Client events, streamio (SOCKETIO_INBOUND_STREAM, CLUSTER_WORKERS=1) and, with --node 1, a
 *     Node socket.io 4 server doing the same by hand (socket.onAny -> node-redis XADD with the
 *     same fields, then the ack {ok:true, id}), one after the other on the same Redis: --clients
 *     websocket clients emit --events events in total with an ack, each keeping --window in
 *     flight. Reports events/s, the server's CPU per event (utime+stime of its process tree from
 *     /proc, over the run), Redis' CPU per event and events per read Redis made from its clients
 *     (INFO stats total_reads_processed: how well the server batches), and checks that the
 *     stream got every event.
 *  2. Presence overhead, streamio only (the Node anchor has none): --presence clients, each with
 *     its own user id, connect and join one of 100 rooms, with PRESENCE off and then on
 *     (PRESENCE_ROOMS=* and PRESENCE_STREAM set). Reports the worker's resident memory and
 *     Redis' memory per connection, and Redis commands per connection (connect + join) and per
 *     disconnect, from INFO commandstats: those sent to Redis (EVAL, HSET, PUBLISH, XADD...) and
 *     those it executed (the scripts' own commands included).
 * Prints a table per part, then one JSON line. Everything it starts is stopped; a hard timeout
 * bounds the run. The client runs in this process, on the same machine: rates are lower bounds.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const bench = require('./lib/bench-common');

const log = bench.logger('bench-bridge');
const TICK = 100; /* clock ticks per second of /proc/<pid>/stat on Linux */

function parseArgs(argv) {
  const o = bench.parseArgs('bench-bridge', 'node scripts/bench-bridge.js --streamio BIN [--clients N] '
    + '[--events N] [--window N] [--presence N] [--node 0|1] [--timeout SECONDS]', argv,
  { clients: 20, events: 20000, window: 16, presence: 2000, node: 1, timeout: 600 }, {
    '--streamio': { key: 'streamio', path: true, exists: true },
    '--clients': { key: 'clients', min: 1, max: 1000 },
    '--events': { key: 'events', min: 100, max: 10000000 },
    '--window': { key: 'window', min: 1, max: 1000 },
    '--presence': { key: 'presence', min: 10, max: 20000 },
    '--node': { key: 'node', min: 0, max: 1 },
    '--timeout': { key: 'timeout', min: 30, max: 7200 },
  });
  if (!o.streamio) o.usage('--streamio BIN is needed');
  return o;
}

/* ---- /proc ---- */

function children(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

// utime + stime of pid and its children, seconds.
function cpuOf(pid) {
  let ticks = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const f = fs.readFileSync(`/proc/${p}/stat`, 'utf8').slice(0).split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / TICK;
}

function rssOf(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/* ---- Redis ---- */

async function redisInfo(redis, section) {
  const text = await redis.call('INFO', section);
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function redisCpu(redis) {
  const i = await redisInfo(redis, 'cpu');
  return Number(i.used_cpu_sys) + Number(i.used_cpu_user);
}

// How many times Redis read from its clients' sockets: commands per read tell how well the
// server batches its writes to Redis.
async function redisReads(redis) {
  return Number((await redisInfo(redis, 'stats')).total_reads_processed);
}

// Commands Redis executed (those of scripts included), and those sent to it: the commands
// presence sends itself (its scripts' own commands are executed, not sent).
const SENT = ['eval', 'hset', 'publish', 'xadd', 'zadd', 'zrangebyscore', 'zrem', 'del'];
async function redisCalls(redis) {
  const i = await redisInfo(redis, 'commandstats');
  let all = 0;
  let sent = 0;
  for (const [k, v] of Object.entries(i)) {
    if (!k.startsWith('cmdstat_') || k === 'cmdstat_info') continue;
    const n = Number(/calls=(\d+)/.exec(v)[1]);
    all += n;
    if (SENT.includes(k.slice(8))) sent += n;
  }
  return { all, sent };
}

async function redisMemory(redis) {
  return Number((await redisInfo(redis, 'memory')).used_memory);
}

/* ---- part 1: client events ---- */

const NODE_SERVER = `
'use strict';
const http = require('node:http');
const os = require('node:os');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const port = Number(process.env.PORT);
const redis = createClient({ url: 'redis://127.0.0.1:' + process.env.REDIS_PORT });
const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
  res.end('{"status":"healthy"}');
});
const io = new Server(server, { transports: ['websocket'] });
const name = os.hostname() + ':' + port;
io.on('connection', (socket) => {
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    redis.xAdd('bench:inbound', '*', { event, data: JSON.stringify(args), sid: socket.id,
      server: name, ts: String(Date.now()) }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 100000 } })
      .then((id) => ack && ack({ ok: true, id }), (e) => ack && ack({ ok: false, error: e.message }));
  });
});
redis.connect().then(() => server.listen(port, '127.0.0.1'));
`;

async function emitAll(h, url, o) {
  const clients = await h.connectClients(url, o.clients);
  let next = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(clients.map(async (s) => {
    const lane = async () => {
      for (;;) {
        const i = next++;
        if (i >= o.events) return;
        const ack = await s.timeout(30000).emitWithAck('chat.send', { n: i, text: 'hello' });
        if (!ack || ack.ok !== true) failed++;
      }
    };
    await Promise.all(Array.from({ length: o.window }, lane));
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  h.closeAllClients();
  return { secs, failed };
}

async function inboundRun(h, o, redis, name, start) {
  await redis.call('DEL', 'bench:inbound');
  const srv = await start();
  try {
    const cpu0 = cpuOf(srv.pid);
    const rcpu0 = await redisCpu(redis);
    const reads0 = await redisReads(redis);
    const { secs, failed } = await emitAll(h, srv.url, o);
    const cpu = cpuOf(srv.pid) - cpu0;
    const rcpu = (await redisCpu(redis)) - rcpu0;
    const reads = (await redisReads(redis)) - reads0 - 2; /* the two INFO calls */
    const stored = Number(await redis.call('XLEN', 'bench:inbound'));
    return {
      server: name,
      events: o.events,
      stored,
      failed,
      seconds: Math.round(secs * 1000) / 1000,
      events_per_s: Math.round(o.events / secs),
      server_cpu_us_per_event: Math.round((cpu * 1e6) / o.events * 10) / 10,
      redis_cpu_us_per_event: Math.round((rcpu * 1e6) / o.events * 10) / 10,
      events_per_redis_read: Math.round((o.events / Math.max(reads, 1)) * 100) / 100,
    };
  } finally {
    await srv.stop();
  }
}

/* ---- part 2: presence ---- */

async function presenceRun(h, o, redis, name, env) {
  await redis.call('FLUSHALL');
  const srv = await h.startStreamio({ CLUSTER_WORKERS: '1', ...env }, { redis });
  try {
    const worker = (await h.healthRetry(srv)).body.workers[0].pid;
    const rss0 = rssOf(worker);
    const mem0 = await redisMemory(redis);
    const calls0 = await redisCalls(redis);
    const clients = [];
    for (let i = 0; i < o.presence; i += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, o.presence - i) }, (_, k) =>
        h.connectClient(srv.url, { auth: { user_id: `user.${i + k}` } })));
      await Promise.all(batch.map((s, k) => h.joinRoom(s, `room.${(i + k) % 100}`)));
      clients.push(...batch);
    }
    // counts are written after the joins' acks: wait until Redis is quiet
    let calls1 = await redisCalls(redis);
    await h.waitUntil(async () => {
      const c = await redisCalls(redis);
      const quiet = c.all - calls1.all <= 4;
      calls1 = c;
      return quiet;
    }, { interval: 300, timeout: 20000, message: 'Redis quiet after the joins' });
    const rss1 = rssOf(worker);
    const mem1 = await redisMemory(redis);
    h.closeAllClients();
    let calls2 = calls1;
    await h.waitUntil(async () => {
      const hb = await h.healthRetry(srv);
      const c = await redisCalls(redis);
      const quiet = hb.body.connectedClients === 0 && c.all - calls2.all <= 4;
      calls2 = c;
      return quiet;
    }, { interval: 300, timeout: 20000, message: 'every client gone' });
    const n = o.presence;
    return {
      mode: name,
      connections: n,
      worker_rss_bytes_per_connection: Math.round((rss1 - rss0) / n),
      redis_memory_bytes_per_connection: Math.round((mem1 - mem0) / n),
      redis_sent_per_connection: Math.round(((calls1.sent - calls0.sent) / n) * 100) / 100,
      redis_executed_per_connection: Math.round(((calls1.all - calls0.all) / n) * 100) / 100,
      redis_sent_per_disconnect: Math.round(((calls2.sent - calls1.sent) / n) * 100) / 100,
      redis_executed_per_disconnect: Math.round(((calls2.all - calls1.all) / n) * 100) / 100,
    };
  } finally {
    await srv.stop();
  }
}

function table(rows, cols) {
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(w[i])).join('  ');
  return [line(cols), line(w.map((n) => '-'.repeat(n))), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const timer = setTimeout(() => {
    log(`timed out after ${o.timeout} s`);
    process.exit(1);
  }, o.timeout * 1000);
  timer.unref();
  process.env.STREAMIO_BIN = o.streamio;
  const h = bench.loadHarness(log);
  const redis = await h.startRedis();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-bench-bridge-'));
  try {
    const inbound = [];
    log(`client events: ${o.events} from ${o.clients} clients, ${o.window} in flight each`);
    inbound.push(await inboundRun(h, o, redis, 'streamio', () => h.startStreamio({
      CLUSTER_WORKERS: '1', SOCKETIO_INBOUND_STREAM: 'bench:inbound',
      RATE_LIMIT_EVENTS_PER_SEC: '0',
    }, { redis })));
    if (o.node) {
      const file = path.join(dir, 'node-inbound.js');
      fs.writeFileSync(file, NODE_SERVER);
      const modules = path.join(bench.ROOT, 'tests', 'integration', 'node_modules');
      inbound.push(await inboundRun(h, o, redis, 'node socket.io + node-redis', async () => {
        const port = await h.freePort();
        return h.startServer({
          cmd: process.execPath, args: [file], port, name: 'node-inbound',
          env: { ...h.baseEnv(), NODE_PATH: modules, PORT: String(port), REDIS_PORT: String(redis.port) },
        });
      }));
    }
    process.stdout.write(`${table(inbound, Object.keys(inbound[0]))}\n\n`);
    log(`presence: ${o.presence} connections, one room each (100 rooms)`);
    const presence = [
      await presenceRun(h, o, redis, 'PRESENCE off', {}),
      await presenceRun(h, o, redis, 'PRESENCE on', {
        PRESENCE: 'true', PRESENCE_ROOMS: '*', PRESENCE_STREAM: 'bench:presence',
      }),
    ];
    process.stdout.write(`${table(presence, Object.keys(presence[0]))}\n\n`);
    process.stdout.write(`${JSON.stringify({ inbound, presence })}\n`);
  } finally {
    h.closeAllClients();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
