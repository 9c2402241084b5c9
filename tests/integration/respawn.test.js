'use strict';
// SIGKILL a worker (pid from /health workers[]): the master respawns it, the port keeps answering,
// counts stay right and clients old and new receive entries. streamio only (needs workers[]).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ROOMS = 4;

describe('worker respawn (CLUSTER_WORKERS=2)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let oldClients = [];
  let oldInboxes = [];
  let victim;
  let victimClients; // how many of oldClients the victim served
  const rooms = Array.from({ length: ROOMS }, (_, r) => h.uniq(`respawn.room${r}`));

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  // Writes `n` entries to every room; returns ids[room][k].
  async function writeAll(tag, n) {
    const ids = rooms.map(() => []);
    const writes = [];
    for (let k = 0; k < n; k++) {
      rooms.forEach((room, r) => writes.push(redis.call('XADD', room, '*', 'event', tag, 'data', String(k))
        .then((id) => { ids[r][k] = id; })));
    }
    await Promise.all(writes);
    return ids;
  }

  // Every inbox gets exactly ids (per room, in order) among the messages tagged `tag`.
  async function expectDelivered(inboxes, ids, tag) {
    const want = ROOMS * ids[0].length;
    const mine = (b) => b.items.filter((m) => m.event === tag);
    await h.waitUntil(() => inboxes.every((b) => mine(b).length >= want), {
      timeout: 15000, interval: 100, message: `${want} '${tag}' messages on ${inboxes.length} clients`,
    });
    await h.sleep(400);
    inboxes.forEach((b, i) => {
      assert.equal(mine(b).length, want, `client ${i}: '${tag}' count`);
      rooms.forEach((room, r) => assert.deepStrictEqual(
        mine(b).filter((m) => m.roomId === room).map((m) => m.messageId), ids[r], `client ${i} ${room}`));
    });
  }

  it('runs two workers that deliver before the kill', logs(async () => {
    oldClients = await h.connectClients(srv.url, 16);
    oldInboxes = oldClients.map((s) => h.collect(s));
    await Promise.all(oldClients.map((s) => Promise.all(rooms.map((r) => h.joinRoom(s, r)))));
    const ids = await writeAll('before', 2);
    await expectDelivered(oldInboxes, ids, 'before');
    const { body } = await h.waitUntil(async () => {
      const r = await h.healthRetry(srv);
      return r.body.connectedClients === oldClients.length ? r : null;
    }, { timeout: 5000, message: 'connectedClients == 16' });
    assert.equal(body.workers.length, 2);
    // Prefer a worker that holds clients, so their disconnect is exercised too.
    const w = body.workers.find((x) => x.connectedClients > 0) || body.workers[0];
    victim = w.pid;
    victimClients = w.connectedClients;
    assert.equal(h.parentPid(victim), srv.pid, 'victim is a child of the master');
  }));

  it('keeps answering /health while the killed worker is respawned', logs(async () => {
    assert.ok(victim, 'victim from the previous test');
    const masterPid = srv.pid;
    h.killWorker(srv, victim, 'SIGKILL');
    const killedAt = Date.now();
    // The port keeps answering: every probe for 3 s, and at least 5 of them however long each
    // takes on a busy box, succeeds (a few retries allowed each).
    let probes = 0;
    while (Date.now() - killedAt < 3000 || probes < 5) {
      const r = await h.healthRetry(srv, { attempts: 5, gap: 100, timeout: 1000 });
      assert.equal(r.body.status, 'healthy');
      assert.equal(r.body.pid, masterPid);
      probes++;
      await h.sleep(150);
    }
    const { body } = await h.waitUntil(async () => {
      const r = await h.healthRetry(srv);
      const ws = r.body.workers || [];
      return ws.length === 2 && !ws.some((w) => w.pid === victim) && ws.every((w) => h.processAlive(w.pid))
        ? r : null;
    }, { timeout: 10000, message: `workers[] without ${victim} and with a new pid` });
    assert.equal(srv.handle.running, true, 'master still running');
    assert.equal(h.processAlive(victim), false, 'victim is gone');
    assert.deepStrictEqual(body.workers.map((w) => w.slot).sort(), [0, 1]);
    for (const w of body.workers) assert.equal(h.parentPid(w.pid), masterPid, `worker ${w.pid} is a child`);
  }));

  it('counts only clients still connected after the kill', logs(async () => {
    // Clients of the killed worker see their connection drop.
    await h.waitUntil(() => oldClients.filter((s) => !s.connected).length === victimClients,
      { timeout: 5000, message: `the ${victimClients} clients of the killed worker to see the drop` });
    const still = oldClients.length - victimClients;
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === still,
      { timeout: 5000, message: `connectedClients == ${still} (clients still connected)` });
  }));

  it('delivers to new clients and to surviving old clients after the respawn', logs(async () => {
    const fresh = await h.connectClients(srv.url, 16);
    const freshInboxes = fresh.map((s) => h.collect(s));
    await Promise.all(fresh.map((s) => Promise.all(rooms.map((r) => h.joinRoom(s, r)))));
    const survivors = oldClients.map((s, i) => [s, oldInboxes[i]]).filter(([s]) => s.connected);
    await h.waitUntil(async () => {
      const r = await h.healthRetry(srv);
      return r.body.connectedClients === fresh.length + survivors.length;
    }, { timeout: 5000, message: 'connectedClients == new + surviving clients' });
    const ids = await writeAll('after', 3);
    await expectDelivered([...freshInboxes, ...survivors.map(([, b]) => b)], ids, 'after');
    for (const room of rooms) {
      await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0,
        { timeout: 5000, message: `XLEN ${room} == 0` });
    }
  }));

  it('still stops with exit status 0 on SIGTERM', logs(async () => {
    h.closeAllClients();
    const t0 = Date.now();
    const code = await srv.stop(10000);
    assert.equal(code, 0, `exit status (took ${Date.now() - t0} ms)`);
  }));
});
