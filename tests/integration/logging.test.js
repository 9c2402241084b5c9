'use strict';
// Log volume by LOG_LEVEL: at info, traffic (connections, joins, stream entries, deliveries, new
// streams) writes no line at all and a deleted stream writes one; debug adds the per-stream lines;
// warn drops the info lines. streamio only.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const prom = require('./lib/promtext');

async function metricValue(url, name) {
  const r = await fetch(`${url}/metrics`);
  return prom.value(prom.parse(await r.text()), name);
}

// Three new streams, six clients, 300 entries delivered, then every client gone.
async function traffic(srv, redis, rooms) {
  const clients = await h.connectClients(srv.url, 6);
  const boxes = clients.map((s) => h.collect(s));
  await Promise.all(clients.map((s, i) => h.joinRoom(s, rooms[i % rooms.length])));
  for (let i = 0; i < 300; i++) await redis.call('XADD', rooms[i % rooms.length], '*', 'event', 'm', 'data', String(i));
  await Promise.all(boxes.map((b) => b.waitCount(300 / rooms.length)));
  for (const s of clients) h.closeClient(s);
  await h.waitUntil(async () => (await metricValue(srv.url, 'streamio_connections')) === 0,
    { timeout: 10000, message: 'every client gone' });
}

// Starts a server and waits until its startup lines are out (master + each worker's start line).
async function start(redis, level) {
  const srv = await h.startStreamio({ CLUSTER_WORKERS: '2', LOG_LEVEL: level }, { redis });
  await h.healthRetry(srv);
  if (level !== 'warn') {
    await h.waitUntil(() => (srv.handle.stderr().match(/worker \d started/g) || []).length === 2
      && srv.handle.stderr().includes('listening'), { timeout: 10000, message: 'startup lines' });
  }
  return srv;
}

describe('LOG_LEVEL and log volume', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let stopped; // the last case's server, for the output printed on a failure

  before(async () => {
    redis = await h.startRedis();
  });

  after(async () => {
    if (redis) await redis.stop();
  });

  // each case runs its own server (a leftover one would read the next case's entries)
  const logs = (fn) => h.withLogs(() => stopped, async (t) => {
    try {
      return await fn(t);
    } finally {
      h.closeAllClients();
      if (srv) await srv.stop();
      stopped = srv;
      srv = null;
    }
  });

  it('info: no line per client, entry or new stream; one line for a deleted stream', logs(async () => {
    srv = await start(redis, 'info');
    const mark = srv.handle.stderr().length;
    const rooms = [h.uniq('log.a'), h.uniq('log.b'), h.uniq('log.c')];
    await traffic(srv, redis, rooms);
    assert.equal(srv.handle.stderr().slice(mark), '', 'no log line for ordinary traffic');
    await redis.call('DEL', rooms[0]);
    await h.waitUntil(() => srv.handle.stderr().slice(mark).includes('gone'),
      { timeout: 15000, message: 'the deleted stream noticed' });
    const lines = srv.handle.stderr().slice(mark).trim().split('\n');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /\[INFO\].*discovery: 1 stream gone since the last pass$/);
  }));

  it('debug: adds one line per stream placed in a pool', logs(async () => {
    srv = await start(redis, 'debug');
    const rooms = [h.uniq('log.d'), h.uniq('log.e')];
    await traffic(srv, redis, rooms);
    for (const room of rooms) {
      const hits = srv.handle.stderr().split('\n').filter((l) => l.includes(`stream ${room} -> pool`));
      assert.equal(hits.length, 1, `${room}: ${hits.join('\n')}`);
      assert.match(hits[0], /\[DEBUG\]/);
    }
  }));

  it('warn: no info line from start to stop', logs(async () => {
    srv = await start(redis, 'warn');
    await traffic(srv, redis, [h.uniq('log.f')]);
    assert.equal(await srv.stop(), 0);
    await srv.handle.closed;
    assert.equal(srv.handle.stderr(), '', 'nothing at warn in a clean run');
  }));
});
