#!/usr/bin/env node
'use strict';
/*
 * Latency under abuse: the well-behaved client's XADD -> receive latency, without and with junk.
 *
 *   node scripts/bench-abuse.js --streamio BIN [--samples 1000] [--interval 10]
 *                               [--concurrency 1500] [--workers 2] [--timeout SECONDS]
 *
 * Starts its own redis-server and streamio (CLUSTER_WORKERS=--workers, auth on, the abuse test's
 * limits) on free loopback ports. One websocket client with a valid token joins a room; an entry
 * carrying t=<hrtime ns> is XADDed every --interval ms; latency = receive time - t (same process,
 * monotonic clock). Phase "quiet": --samples entries with nothing else going on. Phase "junk":
 * --samples entries while tests/integration/lib/junk.js keeps --concurrency junk clients open
 * (the abuse test's eight kinds in turn) from a child process, so the junk does not slow the
 * measuring client's own event loop. Phase "after": the same again once the junk is gone. Prints median / p90 / p99 / max per phase, lost entries,
 * junk connections served, worker RSS (before, peak, after) and worker pids before/after, then one
 * JSON line. A benchmark, never a test: it asserts nothing. Everything it starts is stopped; a
 * hard timeout bounds the run.
 */
const crypto = require('node:crypto');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SUITE = path.join(ROOT, 'tests', 'integration');
const SECRET = 'bench-abuse-secret-0123456789abcdef-0123';

function usage(msg) {
  if (msg) process.stderr.write(`bench-abuse: ${msg}\n`);
  process.stderr.write('usage: node scripts/bench-abuse.js --streamio BIN [--samples N] [--interval MS] '
    + '[--concurrency N] [--workers N] [--timeout SECONDS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { samples: 1000, interval: 10, concurrency: 1500, workers: 2, timeout: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    const num = (lo, hi) => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < lo || n > hi) usage(`${a} must be an integer from ${lo} to ${hi}`);
      return n;
    };
    if (a === '--streamio') o.streamio = path.resolve(val());
    else if (a === '--samples') o.samples = num(10, 100000);
    else if (a === '--interval') o.interval = num(1, 1000);
    else if (a === '--concurrency') o.concurrency = num(1, 5000);
    else if (a === '--workers') o.workers = num(1, 16);
    else if (a === '--timeout') o.timeout = num(10, 3600);
    else usage(a === '-h' || a === '--help' ? '' : `unknown argument ${a}`);
  }
  if (!o.streamio) usage('--streamio BIN is required');
  if (!o.timeout) o.timeout = 120 + Math.ceil((2 * o.samples * o.interval * 3) / 1000);
  return o;
}

const log = (s) => process.stderr.write(`bench-abuse: ${s}\n`);

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}
function sign(claims, secret = SECRET) {
  const body = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(crypto.createHmac('sha256', secret).update(body).digest())}`;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}
const r3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);
function summarize(lat, sent) {
  const s = [...lat].sort((a, b) => a - b);
  return {
    samples: s.length, lost: sent - s.length, median_ms: r3(percentile(s, 50)), p90_ms: r3(percentile(s, 90)),
    p99_ms: r3(percentile(s, 99)), max_ms: r3(s[s.length - 1]),
  };
}

/* Child: junk clients until SIGTERM, then the junkRun result as one JSON line on stdout. */
async function junkChild([port, concurrency, token, forged]) {
  const { junkRun } = require(path.join(SUITE, 'lib', 'junk.js'));
  let stop = false;
  process.on('SIGTERM', () => { stop = true; });
  const r = await junkRun(Number(port), {
    total: 10000000, concurrency: Number(concurrency), token, forged, deadline: 10000, shouldStop: () => stop,
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function main() {
  if (process.argv[2] === '--junk-child') return junkChild(process.argv.slice(3));
  const o = parseArgs(process.argv.slice(2));
  process.env.STREAMIO_BIN = o.streamio;
  const h = require(path.join(SUITE, 'lib', 'harness.js'));
  const { rssBytes } = require(path.join(SUITE, 'lib', 'junk.js'));
  const hard = setTimeout(() => { log(`timed out after ${o.timeout} s`); process.exit(1); }, o.timeout * 1000);
  let redis;
  let srv;
  try {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: String(o.workers), AUTH_JWT_SECRET: SECRET, LOG_LEVEL: 'warn',
      HTTP_HEADER_TIMEOUT_MS: '1000', HTTP_BODY_TIMEOUT_MS: '1000', SOCKETIO_CONNECT_TIMEOUT: '1500',
      SOCKETIO_MAX_HTTP_BUFFER_SIZE: '16384', RATE_LIMIT_EVENTS_PER_SEC: '50', RATE_LIMIT_EVENTS_BURST: '50',
      RATE_LIMIT_MAX_VIOLATIONS: '5',
    }, { redis });
    const pids = (await h.healthRetry(srv)).body.workers.map((w) => w.pid).sort();
    const rss = () => pids.map(rssBytes);
    const room = 'bench.abuse';
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const sock = await h.connectClient(srv.url, { transports: ['websocket'], auth: { token: sign({ exp, rooms: [room] }) } });
    await h.joinRoom(sock, room);
    let lat = null;
    sock.on('room:message', (m) => {
      const now = process.hrtime.bigint();
      const d = m && m.message && m.message.data;
      if (lat && d && typeof d.t === 'string') lat.push(Number(now - BigInt(d.t)) / 1e6);
    });
    const phase = async () => {
      lat = [];
      for (let i = 0; i < o.samples; i++) {
        const t = process.hrtime.bigint();
        await redis.call('XADD', room, '*', 'event', 'bench', 'data', `{"t":"${t}"}`);
        await h.sleep(o.interval);
      }
      await h.waitUntil(() => lat.length >= o.samples, { timeout: 10000, interval: 20 }).catch(() => {});
      const r = summarize(lat, o.samples);
      lat = null;
      return r;
    };
    // warm-up: discovery assigns the stream and its lane settles before anything is measured
    for (let i = 0; i < 200; i++) {
      await redis.call('XADD', room, '*', 'event', 'warmup', 'data', '{}');
      await h.sleep(o.interval);
    }
    await h.sleep(1000);

    const rssBefore = rss();
    log(`quiet phase: ${o.samples} entries every ${o.interval} ms`);
    const quiet = await phase();

    log(`junk phase: ${o.concurrency} junk clients at a time`);
    let rssPeak = rss();
    const sampler = setInterval(() => { rssPeak = rss().map((v, i) => Math.max(v, rssPeak[i])); }, 200);
    const forged = sign({ exp, rooms: ['*'] }, 'not-the-secret-0123456789abcdef-0123');
    const junkStarted = Date.now();
    const child = h.spawnTracked(process.execPath, [__filename, '--junk-child', String(srv.port),
      String(o.concurrency), sign({ exp }), forged], { name: 'junk' });
    await h.sleep(2000); // let the junk reach its steady state
    const loaded = await phase();
    child.proc.kill('SIGTERM');
    await h.waitExit(child, 20000);
    await child.closed;
    const junkRes = JSON.parse(child.stdout().trim().split('\n').pop());
    const junkMs = Date.now() - junkStarted;
    clearInterval(sampler);
    await h.sleep(2000);
    log('after phase: junk gone');
    const afterPhase = await phase();
    const rssAfter = rss();
    const pidsAfter = (await h.healthRetry(srv)).body.workers.map((w) => w.pid).sort();
    const served = Object.values(junkRes.byKind).reduce((a, k) => a + k.n, 0);
    const asExpected = Object.values(junkRes.byKind).reduce((a, k) => a + k.ok, 0);
    const mb = (a) => a.map((v) => (v / 1048576).toFixed(1)).join(' / ');

    const rows = [['phase', 'samples', 'lost', 'median ms', 'p90 ms', 'p99 ms', 'max ms'],
      ...[['quiet', quiet], ['junk', loaded], ['after', afterPhase]].map(([n, s]) => [n, s.samples, s.lost, s.median_ms, s.p90_ms, s.p99_ms, s.max_ms])];
    for (const r of rows) process.stdout.write(`${r.map((c) => String(c).padStart(10)).join(' ')}\n`);
    process.stdout.write(`junk: ${served} connections in ${(junkMs / 1000).toFixed(1)} s (${asExpected} answered as documented), `
      + `${o.concurrency} at a time\n`);
    process.stdout.write(`worker RSS MB: before ${mb(rssBefore)}, peak ${mb(rssPeak)}, after ${mb(rssAfter)}\n`);
    process.stdout.write(`worker pids: before ${pids.join(',')}, after ${pidsAfter.join(',')}\n`);
    process.stdout.write(`${JSON.stringify({
      quiet, junk: loaded, after: afterPhase, junk_connections: served, junk_as_documented: asExpected, junk_seconds: junkMs / 1000,
      concurrency: o.concurrency, workers: o.workers, rss_mb: { before: mb(rssBefore), peak: mb(rssPeak), after: mb(rssAfter) },
      pids_before: pids, pids_after: pidsAfter,
    })}\n`);
    h.closeClient(sock);
  } finally {
    clearTimeout(hard);
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  }
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
