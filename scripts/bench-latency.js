#!/usr/bin/env node
'use strict';
/*
 * Delivery latency benchmark: streamio vs the Node anchor.
 *
 *   node scripts/bench-latency.js --streamio BIN --anchor DIR [--samples 500] [--interval 10]
 *                                 [--timeout SECONDS]
 *
 * Starts its own redis-server, then each server in turn on its own free loopback port and Redis DB
 * (streamio: CLUSTER_WORKERS=1, REDIS_DB=0; anchor: `node server.js` from a scratch copy of DIR
 * installed with npm ci, CLUSTER_ENABLED unset, READ_BLOCK_MS default, REDIS_DB=1). One websocket
 * client joins room `bench.lat`; an entry is XADDed every --interval ms carrying t=<hrtime ns>;
 * latency = client receive time - t (same process, monotonic clock). Prints median / p90 / p99 per
 * server and the ratio anchor/streamio as a table, then one JSON line. Either server may be left
 * out. Everything it starts is stopped; a hard timeout bounds the run. Exit 1 if a server failed.
 */
const fs = require('node:fs');
const path = require('node:path');
const bench = require('./lib/bench-common');

const ROOM = 'bench.lat';
const log = bench.logger('bench-latency');

function parseArgs(argv) {
  const o = bench.parseArgs('bench-latency', 'node scripts/bench-latency.js [--streamio BIN] [--anchor DIR] '
    + '[--samples N] [--interval MS] [--timeout SECONDS]', argv,
  { samples: 500, interval: 10, warmup: 20, timeout: 0 }, {
    '--streamio': { key: 'streamio', path: true, exists: true },
    '--anchor': { key: 'anchor', path: true },
    '--samples': { key: 'samples', min: 10, max: 100000 },
    '--interval': { key: 'interval', min: 1, max: 1000 },
    '--timeout': { key: 'timeout', min: 10, max: 3600 },
  });
  if (!o.streamio && !o.anchor) o.usage('give --streamio BIN and/or --anchor DIR');
  if (o.anchor && !fs.existsSync(path.join(o.anchor, 'server.js'))) o.usage(`${o.anchor}/server.js does not exist`);
  // Per server: startup + warm-up + sampling + drain; plus the anchor's npm ci.
  if (!o.timeout) o.timeout = 180 + Math.ceil(((o.samples + o.warmup) * o.interval * 2) / 1000) * 2;
  return o;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);

function summarize(lat, sent) {
  const s = [...lat].sort((a, b) => a - b);
  return {
    samples: s.length,
    lost: sent - s.length,
    min_ms: round3(s[0] ?? null),
    median_ms: round3(percentile(s, 50)),
    p90_ms: round3(percentile(s, 90)),
    p99_ms: round3(percentile(s, 99)),
    max_ms: round3(s.length ? s[s.length - 1] : null),
    mean_ms: round3(s.length ? s.reduce((a, b) => a + b, 0) / s.length : null),
  };
}

/*
 * Measures one running server: one client in ROOM, `warmup` + `samples` entries every `interval`
 * ms on a dedicated Redis connection to `db`. Returns the summary.
 */
async function measure(h, { url, redisPort, db, samples, warmup, interval }) {
  const redis = await h.RedisClient.connect(redisPort);
  try {
    await redis.call('SELECT', db);
    await redis.call('DEL', ROOM);
    const sock = await h.connectClient(url);
    const pending = new Map(); // seq -> t (bigint ns)
    const lat = [];
    let phase = 'discovery';
    let seen = 0;
    sock.on('room:message', (m) => {
      const now = process.hrtime.bigint();
      const d = m && m.message && m.message.data;
      if (!d || typeof d.t !== 'string') return;
      seen++;
      if (phase !== 'sampling' || !pending.has(d.seq)) return;
      pending.delete(d.seq);
      lat.push(Number(now - BigInt(d.t)) / 1e6);
    });
    await h.joinRoom(sock, ROOM);

    let seq = 0;
    const send = () => {
      seq += 1;
      const t = process.hrtime.bigint();
      const p = redis.call('XADD', ROOM, '*', 'event', 'bench', 'data', `{"t":"${t}","seq":${seq}}`);
      return { seq, t, p };
    };
    // Until the stream is discovered nothing arrives: poke it until the first entry comes back.
    await h.waitUntil(async () => {
      await send().p;
      return seen > 0;
    }, { timeout: 20000, interval: 100, message: `first entry on ${url} (stream discovery)` });

    // Fixed-rate schedule on the monotonic clock (no drift accumulation).
    const total = warmup + samples;
    const start = process.hrtime.bigint();
    const step = BigInt(interval) * 1000000n;
    for (let k = 0; k < total; k++) {
      const due = start + BigInt(k) * step;
      const wait = Number(due - process.hrtime.bigint()) / 1e6;
      if (wait > 0) await h.sleep(wait);
      if (k === warmup) phase = 'sampling';
      const s = send();
      if (phase === 'sampling') pending.set(s.seq, s.t);
      s.p.catch((err) => log(`XADD failed: ${err.message}`));
    }
    await h.waitUntil(() => pending.size === 0, { timeout: 3000, interval: 20, message: 'last samples' })
      .catch(() => {});
    h.closeClient(sock);
    return summarize(lat, samples);
  } finally {
    redis.close();
  }
}

function table(results) {
  const cols = ['samples', 'lost', 'min_ms', 'median_ms', 'p90_ms', 'p99_ms', 'max_ms', 'mean_ms'];
  const rows = [['server', ...cols]];
  for (const [name, r] of Object.entries(results)) {
    rows.push(r.error ? [name, `error: ${r.error}`] : [name, ...cols.map((c) => String(r[c]))]);
  }
  const width = cols.map((_, i) => Math.max(...rows.filter((r) => r.length > 2).map((r) => r[i + 1].length)));
  const w0 = Math.max(...rows.map((r) => r[0].length));
  return rows.map((r) => (r.length === 2 ? `${r[0].padEnd(w0)}  ${r[1]}`
    : [r[0].padEnd(w0), ...r.slice(1).map((c, i) => c.padStart(width[i]))].join('  '))).join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const h = bench.loadHarness(log);
  const started = []; // server handles, redis, temp dirs: everything to undo
  let anchorDir = null;
  let redis = null;
  const cleanup = async () => {
    h.closeAllClients();
    for (const s of started.splice(0)) await s.stop().catch(() => {});
    if (redis) await redis.stop().catch(() => {});
    redis = null;
    if (anchorDir) fs.rmSync(anchorDir, { recursive: true, force: true });
    anchorDir = null;
  };
  const hard = setTimeout(async () => {
    log(`hard timeout (${opts.timeout} s) reached, stopping`);
    await cleanup();
    process.exit(1);
  }, opts.timeout * 1000);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      log(`${sig}: stopping`);
      await cleanup();
      process.exit(130);
    });
  }

  const results = {};
  try {
    if (opts.anchor) anchorDir = bench.prepareAnchor(opts.anchor, log);
    redis = await h.startRedis();
    const common = (port, db) => ({
      ...h.baseEnv(),
      REDIS_HOST: h.HOST,
      REDIS_PORT: String(redis.port),
      REDIS_DB: String(db),
      HOST: h.HOST,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      DISCOVERY_INTERVAL: '500',
    });
    const servers = [];
    if (opts.streamio) {
      servers.push({ name: 'streamio', cmd: opts.streamio, args: [], db: 0, env: { CLUSTER_WORKERS: '1' } });
    }
    if (anchorDir) {
      servers.push({ name: 'anchor', cmd: process.execPath, args: [path.join(anchorDir, 'server.js')], db: 1, env: {} });
    }
    for (const s of servers) {
      let srv = null;
      try {
        const port = await h.freePort();
        log(`${s.name}: starting on ${h.HOST}:${port} (Redis ${redis.port} db ${s.db})`);
        srv = await h.startServer({ cmd: s.cmd, args: s.args, env: { ...common(port, s.db), ...s.env }, port, name: s.name });
        started.push(srv);
        log(`${s.name}: ${opts.warmup} warm-up + ${opts.samples} samples every ${opts.interval} ms`);
        results[s.name] = await measure(h, {
          url: srv.url, redisPort: redis.port, db: s.db, samples: opts.samples, warmup: opts.warmup, interval: opts.interval,
        });
      } catch (err) {
        log(`${s.name}: ${err.message}`); // includes the server's output tail when it did not start
        if (srv) process.stderr.write(srv.describe());
        results[s.name] = { error: err.message.split('\n')[0] };
      } finally {
        if (srv) {
          started.splice(started.indexOf(srv), 1);
          await srv.stop();
        }
      }
    }
  } finally {
    await cleanup();
    clearTimeout(hard);
  }

  const out = { samples: opts.samples, interval_ms: opts.interval, room: ROOM, servers: results };
  const a = results.anchor;
  const s = results.streamio;
  if (a && s && !a.error && !s.error) {
    const ratio = (k) => (s[k] > 0 ? Math.round((a[k] / s[k]) * 100) / 100 : null);
    out.ratio_anchor_over_streamio = { median: ratio('median_ms'), p90: ratio('p90_ms'), p99: ratio('p99_ms') };
  }
  process.stdout.write(`${table(results)}\n`);
  if (out.ratio_anchor_over_streamio) {
    const r = out.ratio_anchor_over_streamio;
    process.stdout.write(`ratio anchor/streamio: median ${r.median}x, p90 ${r.p90}x, p99 ${r.p99}x\n`);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return Object.values(results).some((r) => r.error || r.lost > 0) ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`bench-latency: ${err.stack || err}\n`);
  process.exit(1);
});
