'use strict';
// Faults beyond a restart, each inside a network namespace this file creates (lib/netns.js): a
// 30 s partition between streamio and Redis during fan-out (iptables DROP, no RST), Redis 200 ms
// away (a delaying proxy), Redis out of memory, and kill -9 of the master. Every packet stays on
// the namespace's 127.0.0.0/8. Figures (detection and recovery times, latencies) go to stderr.
if (require('./lib/netns').enter(__filename, { timeout: 600000 })) return;
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const netns = require('./lib/netns');
const { startDelayProxy } = require('./lib/delayproxy');
const { startPeer } = require('./lib/peer');

const note = (s) => process.stderr.write(`# faults: ${s}\n`);

// Writes an entry to `stream` every `gap` ms from 127.0.0.2 (outside any cut of 127.0.0.1)
// until stopped or `max` entries; returns {ids, stop()}.
async function producer(redis, stream, { gap = 100, max = 2000 } = {}) {
  const c = await h.RedisClient.connect(redis.port, { localAddress: '127.0.0.2' });
  const ids = [];
  const sent = new Map(); // id -> time written
  let stopped = false;
  const done = (async () => {
    for (let i = 0; i < max && !stopped; i++) {
      const id = await c.call('XADD', stream, '*', 'event', 'tick', 'data', JSON.stringify({ i }));
      ids.push(id);
      sent.set(id, Date.now());
      await h.sleep(gap);
    }
  })();
  return {
    ids,
    sent,
    done, // resolves once `max` entries are written (or stop() was called)
    async stop() {
      stopped = true;
      await done;
      c.close();
    },
  };
}

// Clients on every worker, in `room`, recording what they get and whether they disconnect.
async function audience(srv, room, { workers = 2 } = {}) {
  const clients = [];
  await h.spreadClients(srv, clients, { workers, step: 4 });
  const seen = [];
  const drops = [];
  for (const c of clients) {
    await h.joinRoom(c, room);
    const got = new Map(); // id -> arrival time
    c.on('room:message', (m) => got.set(m.messageId, got.has(m.messageId) ? -1 : Date.now()));
    c.on('disconnect', (reason) => drops.push(reason));
    seen.push(got);
  }
  return {
    clients,
    seen,
    drops,
    async allGot(ids, timeout) {
      await h.waitUntil(() => seen.every((got) => ids.every((id) => got.has(id))), {
        timeout, message: `every client to get all ${ids.length} entries`,
      });
      const dup = seen.reduce((n, got) => n + [...got.values()].filter((v) => v === -1).length, 0);
      assert.equal(dup, 0, 'no entry delivered twice');
    },
  };
}

const health = async (srv) => (await h.healthRetry(srv, { attempts: 10 })).body;

// /health once all `n` workers are past their setup (a starting one reports pid 0).
const workersUp = (srv, n = 2) => h.waitUntil(async () => {
  const b = await health(srv);
  return b.workers.length === n && b.workers.every((w) => w.pid > 0) ? b : null;
}, { timeout: 15000, message: `${n} workers up` });

// The producer connects from 127.0.0.2, which Redis's protected mode counts as remote; every
// address here is a loopback one of this namespace.
const startRedis = (args = []) => h.startRedis({ args: ['--protected-mode', 'no', ...args] });

describe('faults beyond a restart', { timeout: 300000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let srv2;
  let proxy;
  let proxy2;
  let peer;
  let prod;
  const logs = (fn) => h.withLogs(() => [srv, srv2].filter(Boolean), fn);

  afterEach(async () => {
    h.closeAllClients();
    if (prod) await prod.stop().catch(() => {});
    if (peer) await peer.stop();
    if (srv) await srv.stop();
    if (srv2) await srv2.stop();
    if (proxy) await proxy.close();
    if (proxy2) await proxy2.close();
    if (redis) await redis.stop();
    prod = srv = srv2 = proxy = proxy2 = peer = redis = null;
  });

  it('a 30 s partition from Redis during fan-out: detected, /health degraded, clients stay, nothing lost', logs(async () => {
    redis = await startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, { redis });
    const room = h.uniq('fault.part');
    const aud = await audience(srv, room);
    prod = await producer(redis, room);
    await h.waitUntil(() => prod.ids.length >= 10 && aud.seen.every((g) => g.has(prod.ids[9])),
      { timeout: 10000, message: 'fan-out running' });

    const t0 = Date.now();
    netns.cut(redis.port);
    let cutAt = prod.ids.length;
    const first = await h.waitUntil(async () => {
      const b = await health(srv);
      return b.redisConnected === false ? b : null;
    }, { timeout: 25000, interval: 200, message: '/health to report redisConnected false' });
    const detected = Date.now() - t0;
    const workersDown = await h.waitUntil(async () => {
      const b = await health(srv);
      return b.workers.every((w) => w.redisConnected === false) ? Date.now() - t0 : null;
    }, { timeout: 25000, interval: 200, message: 'every worker to see its Redis links down' });
    assert.equal(first.status, 'healthy'); // the seed's field: the process itself is fine
    assert.ok(workersDown <= 20000, `workers detected the partition in ${workersDown} ms`);
    // the partition lasts 30 s; /health answers and clients stay connected all along
    while (Date.now() - t0 < 30000) {
      const b = await health(srv);
      assert.equal(b.connectedClients, aud.clients.length);
      await h.sleep(1000);
    }
    cutAt = prod.ids.length - cutAt;
    netns.heal(redis.port);
    const t1 = Date.now();
    await h.waitUntil(async () => (await health(srv)).redisConnected === true,
      { timeout: 30000, interval: 200, message: '/health to report redisConnected true again' });
    const back = Date.now() - t1;
    await h.sleep(500); // a few entries after the heal too
    await prod.stop();
    await aud.allGot(prod.ids, 30000);
    const caughtUp = Date.now() - t1;
    assert.deepStrictEqual(aud.drops, [], 'no client was disconnected');
    note(`partition: /health degraded after ${detected} ms, every worker after ${workersDown} ms; ` +
      `Redis back ${back} ms after the heal; all ${prod.ids.length} entries (${cutAt} written during ` +
      `the partition) at ${aud.clients.length} clients ${caughtUp} ms after the heal`);
  }));

  // "Nothing lost" here: every entry of the room's stream reaches every client of both servers
  // (those the other server read and published during the partition included), and so does every
  // ephemeral broadcast (the emitter's) published meanwhile: the cut server's subscription
  // outlives a partition shorter than REDIS_PUBSUB_DEAD_AFTER_MS (60 s, Redis' pub/sub output
  // buffer window), and TCP delivers what Redis kept once the path heals. A longer partition
  // loses those broadcasts, as with Node's adapter; stream entries are at least once (an entry
  // whose XACK the partition cut is delivered again by the server that claims it).
  it('a 30 s partition between two servers\' pub/sub links: detected, /health degraded, clients stay, nothing lost', logs(async () => {
    redis = await startRedis();
    // each server reaches Redis through a proxy of its own: cutting one proxy's port cuts that
    // server's links (commands, reads, pub/sub) and nothing else
    proxy = await startDelayProxy(redis.port);
    proxy2 = await startDelayProxy(redis.port);
    const env = { CLUSTER_WORKERS: '1', SOCKETIO_REDIS_ADAPTER: 'true' };
    srv = await h.startStreamio({ ...env, REDIS_PORT: String(proxy.port) }, { timeout: 40000 });
    srv2 = await h.startStreamio({ ...env, REDIS_PORT: String(proxy2.port) }, { timeout: 40000 });
    peer = await startPeer(redis, 'classic');
    const room = h.uniq('fault.pubsub');
    const auds = [await audience(srv, room, { workers: 1 }), await audience(srv2, room, { workers: 1 })];
    const bcasts = auds.map((a) => a.clients.map((c) => {
      const got = [];
      c.on('bcast', (tag) => got.push(tag));
      return got;
    }));
    prod = await producer(redis, room);
    await h.waitUntil(() => prod.ids.length >= 10 && auds.every((a) => a.seen.every((g) => g.has(prod.ids[9]))),
      { timeout: 20000, message: 'fan-out running on both servers' });

    const t0 = Date.now();
    netns.cut(proxy2.port);
    let during = prod.ids.length;
    const sent = [];
    let detected = null;
    // the partition lasts 30 s: the emitter broadcasts every 500 ms, both servers' clients stay
    while (Date.now() - t0 < 30000) {
      const tag = `b${sent.length}`;
      await peer.call('emitter', { rooms: [room], event: 'bcast', args: [tag] });
      sent.push(tag);
      const [a, b] = [await health(srv), await health(srv2)];
      assert.equal(a.redisConnected, true, 'the other server keeps its Redis');
      assert.equal(b.connectedClients, auds[1].clients.length);
      assert.equal(a.connectedClients, auds[0].clients.length);
      if (detected === null && b.redisConnected === false) detected = Date.now() - t0;
      await h.sleep(500);
    }
    assert.ok(detected !== null && detected <= 20000, `the cut server reported it in ${detected} ms`);
    during = prod.ids.length - during;
    netns.heal(proxy2.port);
    const t1 = Date.now();
    await h.waitUntil(async () => (await health(srv2)).redisConnected === true,
      { timeout: 30000, interval: 200, message: '/health of the cut server to report redisConnected true again' });
    const back = Date.now() - t1;
    await prod.stop();
    await h.waitUntil(() => auds.every((a) => a.seen.every((got) => prod.ids.every((id) => got.has(id)))),
      { timeout: 60000, interval: 200, message: `every client of both servers to get all ${prod.ids.length} entries` });
    const entriesAt = Date.now() - t1;
    await h.waitUntil(() => bcasts.every((boxes) => boxes.every((got) => sent.every((t) => got.includes(t)))),
      { timeout: 60000, interval: 200, message: `every client to get all ${sent.length} broadcasts` });
    const bcastsAt = Date.now() - t1;
    for (const boxes of bcasts) for (const got of boxes) assert.deepStrictEqual(got, sent, 'each broadcast once, in order');
    const dups = auds.map((a) => a.seen.reduce((n, got) => n + [...got.values()].filter((v) => v === -1).length, 0));
    assert.equal(dups[0], 0, 'no entry twice on the server that kept its link');
    for (const a of auds) assert.deepStrictEqual(a.drops, [], 'no client was disconnected');
    note(`pub/sub partition: the cut server reported it after ${detected} ms, its Redis back ${back} ms ` +
      `after the heal; all ${prod.ids.length} entries (${during} written during the partition) at every client ` +
      `${entriesAt} ms after the heal, all ${sent.length} broadcasts ${bcastsAt} ms after; entries seen twice ` +
      `at the cut server's clients: ${dups[1]}`);
  }));

  it('slow Redis (200 ms each way): every entry delivered, in order, while slow and once it recovers', logs(async () => {
    redis = await startRedis();
    proxy = await startDelayProxy(redis.port, { delay: 200 });
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', REDIS_PORT: String(proxy.port) }, { timeout: 40000 });
    const room = h.uniq('fault.slow');
    const aud = await audience(srv, room);
    const warm = await redis.call('XADD', room, '*', 'event', 'warm-up', 'data', '{}');
    await aud.allGot([warm], 30000); // the stream is found and read: what follows is steady
    prod = await producer(redis, room, { gap: 50, max: 100 });
    await prod.done;
    await prod.stop();
    await aud.allGot(prod.ids, 60000);
    const lat = (ids) => {
      const v = [];
      for (const got of aud.seen) for (const id of ids) v.push(got.get(id) - prod.sent.get(id));
      v.sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)];
    };
    const slowMedian = lat(prod.ids);
    for (const got of aud.seen) {
      const order = [...got.keys()].slice(1);
      assert.deepStrictEqual(order, prod.ids, 'in order');
    }
    proxy.setDelay(0);
    const before = prod.ids.length;
    prod = await producer(redis, room, { gap: 50, max: 100 });
    await prod.done;
    await prod.stop();
    await aud.allGot(prod.ids, 30000);
    const fastMedian = lat(prod.ids);
    const b = await health(srv);
    assert.equal(b.redisConnected, true);
    assert.deepStrictEqual(aud.drops, []);
    note(`slow Redis: median delivery ${slowMedian} ms at +200 ms each way (${before} entries), ` +
      `${fastMedian} ms once the delay is gone`);
  }));

  it('Redis out of memory (maxmemory + noeviction): a clear error, no crash, delivery once memory is back', logs(async () => {
    redis = await startRedis(['--maxmemory-policy', 'noeviction']);
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, { redis });
    const pids = (await workersUp(srv)).workers.map((w) => w.pid).sort();
    const room = h.uniq('fault.oom');
    const aud = await audience(srv, room);
    // the stream appears and Redis runs out of memory at once: its consumer group cannot be made
    await redis.call('MULTI');
    await redis.call('XADD', room, '*', 'event', 'first', 'data', '{}');
    await redis.call('CONFIG', 'SET', 'maxmemory', '1');
    const [id] = await redis.call('EXEC');
    await assert.rejects(redis.call('XADD', room, '*', 'event', 'refused'), /OOM/);
    await h.waitUntil(() => /OOM command not allowed/.test(srv.handle.stderr()),
      { timeout: 15000, message: 'a log line naming the OOM error' });
    const line = srv.handle.stderr().split('\n').find((l) => /OOM command not allowed/.test(l));
    note(`out of memory: ${line.replace(/^\S+ /, '')}`);
    assert.deepStrictEqual((await health(srv)).workers.map((w) => w.pid).sort(), pids, 'no worker died');
    await redis.call('CONFIG', 'SET', 'maxmemory', '0');
    const t0 = Date.now();
    const id2 = await redis.call('XADD', room, '*', 'event', 'second', 'data', '{}');
    await aud.allGot([id, id2], 20000);
    assert.deepStrictEqual(aud.drops, []);
    note(`out of memory: both entries delivered ${Date.now() - t0} ms after memory came back`);
  }));

  it('kill -9 of the master: its workers exit too, nothing orphaned, a new master loses no entry', logs(async () => {
    // what a killed worker had read but not acknowledged stays pending under its consumer; the
    // new master may give that stream to its other worker, which claims it once idle this long
    // POOL_SIZE 1: each stream is a pool of its own, and pools are spread over the workers
    const env = { CLUSTER_WORKERS: '2', STREAM_CLAIM_IDLE_MS: '1000', POOL_SIZE: '1' };
    redis = await startRedis();
    srv = await h.startStreamio(env, { redis });
    const port = srv.port;
    const workers = (await workersUp(srv)).workers.map((w) => w.pid);
    // The client sits on the worker that reads the room's stream. An entry that worker hands to
    // its sibling over the local IPC and acknowledges in the milliseconds the kernel takes to
    // kill them both dies in the sibling's queue, for that sibling's clients only, as bytes in
    // flight on their connections do (README, Operations); bytes written to a client's socket
    // reach it even once the writer is killed. Which worker accepts a connection is the kernel's
    // choice (under load one may win every time), so the client connects first and the room is
    // one whose stream its worker reads: streams are created (an entry each) until one lands there.
    const c = await h.connectClient(srv.url, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const mine = (await h.waitUntil(async () => (await health(srv)).workers.find((w) => w.connectedClients === 1),
      { message: 'the client counted' })).slot;
    const readBy = async () => new Map((await health(srv)).workers.map((w) => [w.slot, w.streams]));
    const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
    let room = null;
    for (let i = 0; i < 10 && !room; i++) {
      const name = h.uniq('fault.master');
      const before = await readBy();
      await redis.call('XADD', name, '*', 'event', 'tick', 'data', '{}');
      const after = await h.waitUntil(async () => {
        const m = await readBy();
        return total(m) > total(before) && m;
      }, { timeout: 15000, message: `a worker to read ${name}` });
      if (after.get(mine) > before.get(mine)) room = name;
    }
    assert.ok(room, `a room read by worker ${mine}, which holds the client`);
    const got = new Set();
    let dups = 0;
    let joins = 0;
    const rejoinFailures = [];
    const gotAt = new Map(); // id -> when first received, for the message of a failure
    let rejoinedAt = 0;
    c.on('room:message', (m) => {
      if (got.has(m.messageId)) return dups++;
      got.add(m.messageId);
      gotAt.set(m.messageId, Date.now());
    });
    c.on('connect', () => h.joinRoom(c, room).then(() => { joins++; rejoinedAt = rejoinedAt || Date.now(); },
      (err) => rejoinFailures.push(err.message)));
    await h.joinRoom(c, room);
    prod = await producer(redis, room, { gap: 50 });
    await h.waitUntil(() => prod.ids.length >= 5 && got.has(prod.ids[4]), { message: 'delivery' });

    const t0 = Date.now();
    process.kill(srv.pid, 'SIGKILL');
    // how soon is the kernel's business (the guard's SIGKILL, checked by cause in test_orphan):
    // the bound only catches a hang
    await h.waitUntil(() => workers.every((pid) => !h.processAlive(pid)),
      { timeout: 15000, interval: 20, message: 'the workers to exit' });
    const gone = Date.now() - t0;
    await srv.stop();
    srv = await h.startStreamio({ ...env, PORT: String(port) }, { redis });
    const restarted = Date.now() - t0;
    // the client is back in its room and gets what is written now
    await h.waitUntil(() => joins >= 1, { timeout: 10000, message: 'the client to rejoin' });
    const after = prod.ids.length;
    await h.waitUntil(() => prod.ids.length > after + 2 && got.has(prod.ids[after + 2]),
      { timeout: 10000, message: 'an entry written after the restart' });
    await prod.stop();
    // times in ms from the kill: an entry the new master read before the client was back in
    // its room reached nobody, which a failure must tell apart from an entry never read
    const since = (t) => (t ? t - t0 : 'never');
    const missing = () => prod.ids.filter((id) => !got.has(id)).map((id) => `${id} written ${since(prod.sent.get(id))}`);
    // every entry was delivered before the kill, written to the client's socket by a worker the
    // kill then ended, or left pending or unread in Redis for the new master
    await h.waitUntil(() => prod.ids.every((id) => got.has(id)), { timeout: 20000 }).catch((err) => {
      const first = [...gotAt.values()].filter((t) => t > rejoinedAt).sort((a, b) => a - b)[0];
      throw new Error(`${err.message}: the client to get all ${prod.ids.length} entries; missing ` +
        `${missing().join(', ')}; server restarted ${restarted}, client back in its room ` +
        `${since(rejoinedAt)}, first entry after that received ${since(first)}`);
    });
    assert.deepStrictEqual(rejoinFailures, []);
    note(`kill -9 master: workers gone after ${gone} ms, new master serving after ${restarted} ms, ` +
      `${prod.ids.length} of ${prod.ids.length} entries delivered (${dups} twice: read, not yet acknowledged)`);
  }));
});
