'use strict';
// GET /health: fields, types and server-wide (summed over workers) counters, CLUSTER_WORKERS=2.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

describe('GET /health (CLUSTER_WORKERS=2)', { timeout: 90000 }, () => {
  let redis;
  let srv;
  let clients = [];
  const ENTRIES = 7;

  let spawnedAt;

  before(async () => {
    redis = await h.startRedis();
    spawnedAt = Date.now();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('answers 200 with the contract fields and types', logs(async () => {
    // Ready (/health 200) may come a moment before the Redis connection is up.
    const r = await h.waitUntil(async () => {
      const x = await h.getHealth(srv.url);
      return x.status !== 200 || !x.body || x.body.redisConnected !== false ? x : null;
    }, { timeout: 5000, message: 'redisConnected to leave false' });
    assert.equal(r.status, 200);
    assert.ok(r.body, `JSON body: ${r.raw.slice(0, 300)}`);
    const b = r.body;
    assert.equal(b.status, 'healthy');
    for (const k of ['uptime', 'messagesProcessed', 'connectedClients', 'streams', 'pools']) {
      assert.ok(isNum(b[k]), `${k} is a number: ${JSON.stringify(b[k])}`);
    }
    // seconds since the server started: no more than since we spawned it (ms precision)
    assert.ok(b.uptime > 0 && b.uptime <= (Date.now() - spawnedAt) / 1000 + 0.001,
      `uptime ${b.uptime} s, spawned ${(Date.now() - spawnedAt) / 1000} s ago`);
    assert.equal(b.redisConnected, true);
    assert.equal(b.pid, srv.pid, 'pid is the pid of the process we started (the master)');
    assert.equal(b.connectedClients, 0);
    assert.equal(b.messagesProcessed, 0);
    // it grows with the wall clock: by no less than the time between the two answers' requests
    const t1 = Date.now();
    const first = (await h.getHealth(srv.url)).body;
    const t2 = Date.now();
    const later = await h.waitUntil(async () => {
      const x = (await h.getHealth(srv.url)).body;
      return x.uptime >= first.uptime + 0.2 ? x : null;
    }, { message: 'uptime to grow' });
    const t3 = Date.now();
    const grew = later.uptime - first.uptime;
    assert.ok(grew <= (t3 - t1) / 1000 + 0.002 && grew >= 0.2,
      `uptime grew ${grew} s within ${(t3 - t1) / 1000} s (first answer after ${(t2 - t1) / 1000} s)`);
  }));

  it('counts connected clients and processed entries server-wide', logs(async () => {
    clients = await h.connectClients(srv.url, 8);
    const rooms = [h.uniq('health.a'), h.uniq('health.b')];
    const inboxes = clients.map((s) => h.collect(s));
    await Promise.all(clients.map((s, i) => h.joinRoom(s, rooms[i % 2])));
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 8,
      { timeout: 5000, message: 'connectedClients == 8' });
    for (let k = 0; k < 6; k++) {
      assert.equal((await h.healthRetry(srv)).body.connectedClients, 8, `GET /health #${k}`);
    }
    for (let i = 0; i < ENTRIES; i++) await redis.call('XADD', rooms[i % 2], '*', 'event', 'h', 'data', String(i));
    // rooms[0] gets entries 0,2,4,6 and rooms[1] gets 1,3,5.
    await h.waitUntil(() => inboxes.every((b, i) => b.items.length === (i % 2 === 0 ? 4 : 3)),
      { timeout: 10000, message: 'all entries delivered' });
    const b = (await h.waitUntil(async () => {
      const r = await h.healthRetry(srv);
      return r.body.messagesProcessed === ENTRIES ? r : null;
    }, { timeout: 5000, message: `messagesProcessed == ${ENTRIES}` })).body;
    assert.ok(b.streams >= 2, `streams ${b.streams}`);
    assert.ok(b.pools >= 1, `pools ${b.pools}`);

    // Disconnects are counted too.
    h.closeClient(clients[0]);
    h.closeClient(clients[1]);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 6,
      { timeout: 5000, message: 'connectedClients == 6 after two disconnects' });
  }));

  it('reports rooms, deliveries and one workers[] entry per worker', { skip: h.ANCHOR_SKIP }, logs(async () => {
    const { body: b } = await h.healthRetry(srv);
    assert.ok(isNum(b.rooms), `rooms is a number: ${JSON.stringify(b.rooms)}`);
    assert.ok(isNum(b.deliveries), `deliveries is a number: ${JSON.stringify(b.deliveries)}`);
    assert.ok(b.rooms >= 1, `rooms ${b.rooms}`);
    assert.ok(b.deliveries >= 1, `deliveries ${b.deliveries}`);
    assert.ok(Array.isArray(b.workers), `workers is an array: ${JSON.stringify(b.workers)}`);
    assert.equal(b.workers.length, 2);
    for (const w of b.workers) {
      for (const k of ['slot', 'pid', 'connectedClients', 'rooms', 'deliveries', 'messagesProcessed']) {
        assert.ok(isNum(w[k]), `workers[].${k} is a number: ${JSON.stringify(w)}`);
      }
      assert.notEqual(w.pid, b.pid, 'a worker is not the master');
      assert.equal(h.parentPid(w.pid), srv.pid, `worker ${w.pid} is a child of the master`);
    }
    assert.deepStrictEqual(b.workers.map((w) => w.slot).sort(), [0, 1]);
    assert.notEqual(b.workers[0].pid, b.workers[1].pid);
    const sum = (k) => b.workers.reduce((a, w) => a + w[k], 0);
    assert.equal(sum('connectedClients'), b.connectedClients, 'connectedClients is the sum over workers');
    assert.equal(b.connectedClients, clients.filter((s) => s.connected).length);
    assert.equal(sum('messagesProcessed'), b.messagesProcessed, 'messagesProcessed is the sum over workers');
    assert.equal(b.messagesProcessed, ENTRIES);
  }));
});

describe('GET /health without Redis', { timeout: 60000 }, () => {
  let redis;
  let srv;

  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  it('starts with redisConnected:false and connects once Redis appears', h.withLogs(() => srv, async () => {
    const redisPort = await h.freePort(); // nothing listens there yet
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500', REDIS_PORT: String(redisPort) });
    const first = await h.healthRetry(srv);
    assert.equal(first.body.status, 'healthy');
    assert.equal(first.body.redisConnected, false);
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('health.late-redis');
    await h.joinRoom(s, room);

    redis = await h.startRedis({ port: redisPort });
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.redisConnected === true,
      { timeout: 15000, interval: 200, message: 'redisConnected == true after Redis started' });
    const id = await redis.call('XADD', room, '*', 'event', 'late-redis');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 10000);
  }));
});
