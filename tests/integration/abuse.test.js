'use strict';
// Abuse: 10,000 junk connections (idle, slowloris, garbage, oversized and invalid-UTF-8 frames,
// broken JSON, event floods, forged tokens; at most 1,500 open at once) against 2 workers with
// authentication on, while a well-behaved client receives every entry XADDed meanwhile, exactly
// and in order. Every junk client must get its documented answer, every refusal must be counted
// in /metrics, no worker may restart, and worker memory must come back down afterwards.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const h = require('./lib/harness');
const { limitCounts } = require('./lib/rawnet');
const { KINDS, junkRun, rssBytes } = require('./lib/junk');

const SECRET = 'abuse-secret-0123456789abcdef-0123456789';
const TOTAL = 10000;
const CONCURRENCY = 1500;
const MAX_VIOLATIONS = 5;

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}
function sign(claims, secret = SECRET) {
  const body = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(crypto.createHmac('sha256', secret).update(body).digest())}`;
}

describe('abuse: 10,000 junk connections beside a well-behaved client', { timeout: 300000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2',
      AUTH_JWT_SECRET: SECRET,
      // timeouts well above what a loaded box (sanitizers, 1,500 sockets at once) needs to read
      // a head or a first packet, so only the idle, slowloris and forged clients meet them
      HTTP_HEADER_TIMEOUT_MS: '4000',
      HTTP_BODY_TIMEOUT_MS: '4000',
      SOCKETIO_CONNECT_TIMEOUT: '4000',
      SOCKETIO_MAX_HTTP_BUFFER_SIZE: '16384',
      RATE_LIMIT_EVENTS_PER_SEC: '50',
      RATE_LIMIT_EVENTS_BURST: '50',
      RATE_LIMIT_MAX_VIOLATIONS: String(MAX_VIOLATIONS),
    }, { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  it('answers every junk client as documented and loses nothing for the good one', h.withLogs(() => srv, async (t) => {
    const health = (await h.healthRetry(srv)).body;
    const pids = health.workers.map((w) => w.pid).sort();
    assert.equal(pids.length, 2);
    const rss = () => pids.map(rssBytes);
    const rssBefore = rss();
    const countsBefore = await limitCounts(srv);

    // the well-behaved client
    const room = h.uniq('abuse.room');
    const good = await h.connectClient(srv.url, {
      transports: ['websocket'], auth: { token: sign({ exp: Math.floor(Date.now() / 1000) + 3600, rooms: [room] }) },
    });
    const inbox = h.collect(good);
    assert.deepStrictEqual(await h.emitAck(good, 'join-room', room), { ok: true, roomId: room });

    // producer: one entry every 10 ms while the junk runs, then 50 more
    const sent = [];
    let junkDone = false;
    const producer = (async () => {
      let tail = 50;
      while (!junkDone || tail-- > 0) {
        const seq = sent.length;
        const id = await redis.call('XADD', room, '*', 'event', 'tick', 'data', JSON.stringify({ seq }));
        sent.push(id);
        await h.sleep(10);
        if (sent.length > 20000) break; // bounded whatever happens
      }
    })();

    let rssPeak = rssBefore.slice();
    const sampler = setInterval(() => { rssPeak = rss().map((v, i) => Math.max(v, rssPeak[i])); }, 200);
    const started = Date.now();
    const floodToken = sign({ exp: Math.floor(Date.now() / 1000) + 3600 });
    const forged = sign({ exp: Math.floor(Date.now() / 1000) + 3600, rooms: ['*'] }, 'not-the-secret-0123456789abcdef-0123');
    let res;
    try {
      res = await junkRun(srv.port, {
        total: TOTAL, concurrency: CONCURRENCY, token: floodToken, forged, deadline: 20000,
        shouldStop: () => Date.now() - started > 200000,
      });
    } finally {
      junkDone = true;
      clearInterval(sampler);
    }
    const junkMs = Date.now() - started;
    await producer;

    // every junk client got its answer
    const per = TOTAL / KINDS.length;
    t.diagnostic(`junk: ${TOTAL} connections in ${junkMs} ms: ${JSON.stringify(res.byKind)}`);
    assert.deepStrictEqual(res.failures, []);
    for (const k of KINDS) assert.deepStrictEqual(res.byKind[k], { n: per, ok: per, closed: per }, k);

    // the good client got every entry, exactly and in order
    const msgs = await inbox.waitCount(sent.length, 30000);
    assert.equal(msgs.length, sent.length);
    msgs.forEach((m, seq) => assert.deepStrictEqual(m, {
      from: 'service', message: { event: 'tick', data: { seq } }, roomId: room, event: 'tick', messageId: sent[seq],
    }));
    assert.ok(good.connected);
    t.diagnostic(`good client: ${sent.length} entries XADDed and received, 0 lost`);

    // each refusal counted once
    const d = {};
    const countsAfter = await limitCounts(srv);
    for (const k of Object.keys(countsAfter)) d[k] = countsAfter[k] - countsBefore[k];
    t.diagnostic(`limit counters: ${JSON.stringify(d)}`);
    assert.equal(d.header_timeout, 2 * per, 'idle + slowloris');
    assert.equal(d.ws_message, per, 'bigframe');
    assert.equal(d.auth, per, 'forged');
    assert.equal(d.first_packet_timeout, per, 'forged sessions never connect');
    assert.equal(d.rate_events, per * (MAX_VIOLATIONS + 1), 'flood');
    for (const k of ['per_ip', 'total', 'memory', 'header_size', 'body_size', 'rate_joins', 'output_buffer',
      'body_timeout', 'origin', 'token_expired']) assert.equal(d[k], 0, k);

    // same workers, memory back down
    const after = (await h.healthRetry(srv)).body;
    assert.deepStrictEqual(after.workers.map((w) => w.pid).sort(), pids, 'no worker restarted');
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 1,
      { timeout: 15000, message: 'only the good client left' });
    const rssAfter = rss();
    const mb = (a) => a.map((v) => (v / 1048576).toFixed(1)).join('/');
    t.diagnostic(`worker RSS MB before ${mb(rssBefore)}, peak ${mb(rssPeak)}, after ${mb(rssAfter)}`);
    // ASan keeps freed memory in its quarantine (up to 256 MB): only the peak bound applies there
    const asan = fs.readFileSync(`/proc/${pids[0]}/maps`, 'utf8').includes('libasan');
    if (!asan) {
      rssAfter.forEach((v, i) => assert.ok(v < rssBefore[i] + 64 * 1048576,
        `worker ${pids[i]} RSS ${v} back within 64 MB of ${rssBefore[i]}`));
    }
    rssPeak.forEach((v) => assert.ok(v < 512 * 1048576, `peak RSS ${v} under 512 MB`));
    h.closeClient(good);
  }));
});
