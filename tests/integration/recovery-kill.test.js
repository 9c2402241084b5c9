'use strict';
// kill -9 of a worker with clients (CONNECTION_RECOVERY=true, CLUSTER_WORKERS=2): the killed
// worker's sessions live on in shared memory, so each of its clients reconnects (to the other
// worker or to the respawned one) with socket.recovered === true, the same sid and rooms, and
// every entry written to its rooms meanwhile, in order, exactly once; the other worker's
// clients never notice. Real redis-server, streamio, the npm socket.io-client (no option set
// but its reconnection delays).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { metrics } = require('./lib/backend');

const ENV = {
  CLUSTER_WORKERS: '2', CONNECTION_RECOVERY: 'true', STREAM_DELETE_POLICY: 'retain',
  DISCOVERY_INTERVAL: '500',
};
const ROOMS = 3;
const TOTAL = 150; // entries per room
const KILL_AT = 50;

describe('a worker killed with SIGKILL: its clients recover elsewhere', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio(ENV, { redis });
  });
  const logs = h.stopAfter(() => ({ srv, redis }));

  it('recovers every client of the killed worker with its rooms and every entry once, in order', logs(async () => {
    const rooms = Array.from({ length: ROOMS }, (_, r) => h.uniq(`kill.room${r}`));
    // the streams exist and are read before the run, so entries flow at a steady pace
    const known = (await h.healthRetry(srv)).body.streams;
    for (const r of rooms) {
      const id = await redis.call('XADD', r, '*', 'seed', '1');
      await redis.call('XDEL', r, id);
    }
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.streams >= known + ROOMS,
      { timeout: 15000, message: 'the streams discovered' });

    // clients (WebSocket and long-polling) until each worker holds at least 3 (the kernel
    // spreads the accepts)
    const clients = [];
    const opts = {
      reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0,
      timeout: 10000,
    };
    let body;
    for (let round = 0; round < 10; round++) {
      const batch = [
        ...(await h.connectClients(srv.url, 4, opts)),
        ...(await h.connectClients(srv.url, 2, { ...opts, transports: ['polling'] })),
      ];
      for (const s of batch) {
        const k = clients.length;
        const mine = [rooms[k % ROOMS], rooms[(k + 1) % ROOMS]];
        const c = { s, rooms: mine, byRoom: new Map(mine.map((r) => [r, []])), sid: s.id, pid: s._pid,
          drops: 0, connects: 0, stray: 0 };
        s.on('room:message', (p, offset) => {
          const list = c.byRoom.get(p.roomId);
          if (!list || offset !== p.messageId) c.stray++;
          else list.push(p);
        });
        s.on('disconnect', () => { c.drops++; });
        s.on('connect', () => { c.connects++; });
        for (const r of mine) await h.joinRoom(s, r);
        clients.push(c);
      }
      ({ body } = await h.waitUntil(async () => {
        const r = await h.healthRetry(srv);
        return r.body.connectedClients === clients.length ? r : null;
      }, { timeout: 10000, message: `connectedClients == ${clients.length}` }));
      if (body.workers.length === 2 && body.workers.every((w) => w.connectedClients >= 3)) break;
    }
    assert.ok(body.workers.every((w) => w.connectedClients >= 3),
      `both workers hold clients: ${body.workers.map((w) => w.connectedClients)}`);
    const victim = body.workers.find((w) => w.connectedClients >= 3);
    const victimClients = victim.connectedClients;

    // a steady producer; ids from one sequence, so no two streams share one (see README)
    const sent = new Map(rooms.map((r) => [r, []]));
    const base = Date.now() + 1;
    let seq = 0;
    let killedAt = 0;
    for (let i = 0; i < TOTAL; i++) {
      for (const r of rooms) {
        const id = await redis.call('XADD', r, `${base}-${++seq}`, 'event', 'tick', 'data', JSON.stringify({ i }));
        sent.get(r).push(id);
      }
      if (i === KILL_AT) {
        h.killWorker(srv, victim.pid, 'SIGKILL');
        killedAt = Date.now();
      }
      await h.sleep(10); // pacing: entries keep flowing while the clients are away
    }
    const dropped = () => clients.filter((c) => c.drops > 0);
    const state = () => clients.map((c) => `${c.s.io.engine ? c.s.io.engine.transport.name : '-'}:`
      + `${c.drops}/${c.connects}/${c.s.connected}/${c.s.recovered}`).join(' ');
    // (a long-polling client of the other worker drops too when the killed one had accepted its
    // request in flight; its session recovers from the record its own worker saved)
    await h.waitUntil(() => dropped().length >= victimClients && dropped().every((c) => c.s.connected),
      { timeout: 30000, message: `the ${victimClients} clients of the killed worker reconnected (${state()})` });
    const want = (c) => c.rooms.every((r) => c.byRoom.get(r).length >= TOTAL);
    await h.waitUntil(() => clients.every(want), {
      timeout: 30000,
      message: `${TOTAL} entries per room on every client (got ${clients.map((c) => c.rooms.map((r) => c.byRoom.get(r).length))})`,
    });
    // one more entry per room, after everything else in its stream: once every client has it,
    // a duplicate of an earlier one would have come before it
    const fence = [];
    for (const r of rooms) fence.push(await redis.call('XADD', r, `${base}-${++seq}`, 'event', 'fence', 'data', '{}'));
    await h.waitUntil(() => clients.every((c) => c.rooms.every((r) => c.byRoom.get(r).some((p) => p.event === 'fence'))),
      { timeout: 30000, message: 'the fence entries on every client' });
    for (const c of clients) await h.joinRoom(c.s, h.uniq('kill.barrier'));

    const recovered = dropped();
    const ws = (c) => c.s.io.engine.transport.name === 'websocket';
    assert.ok(recovered.filter(ws).length <= victimClients, 'no WebSocket client of the other worker dropped');
    for (const [k, c] of clients.entries()) {
      const who = `client ${k} (${c.s.io.engine.transport.name}, ${c.drops ? 'dropped' : 'not dropped'})`;
      if (c.drops) {
        assert.equal(c.drops, 1, `${who}: dropped once`);
        assert.equal(c.s.recovered, true, `${who}: socket.recovered`);
        assert.equal(c.s.id, c.sid, `${who}: the same sid`);
        assert.equal(c.s._pid, c.pid, `${who}: the same pid`);
      } else {
        assert.equal(c.connects, 0, `${who}: never reconnected`);
        assert.equal(c.s.id, c.sid, `${who}: the same sid`);
      }
      assert.equal(c.stray, 0, `${who}: nothing from rooms it is not in`);
      for (const r of c.rooms) {
        const ids = c.byRoom.get(r).map((p) => p.messageId);
        assert.deepStrictEqual(ids, [...sent.get(r), fence[rooms.indexOf(r)]],
          `${who} ${r}: every entry once, in order`);
        c.byRoom.get(r).slice(0, TOTAL).forEach((p, i) => assert.deepStrictEqual(p, {
          from: 'service', message: { event: 'tick', data: { i } }, roomId: r, event: 'tick', messageId: sent.get(r)[i],
        }, `${who} ${r}: exact payload ${i}`));
      }
    }
    const after = (await h.healthRetry(srv)).body;
    // entries the respawned worker read again and did not hand over again (its ledger)
    const skipped = [...(await metrics(srv.url)).matchAll(/^streamio_reread_skipped_total\{[^}]*\} (\d+)$/gm)]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    process.stderr.write(`# kill -9 of worker pid ${victim.pid} holding ${victimClients} of ${clients.length} clients `
      + `at entry ${KILL_AT}/${TOTAL}: ${recovered.length} dropped and recovered (same sid, rooms, every entry once; `
      + `${recovered.length - victimClients} of them polling clients of the other worker), `
      + `workers now ${after.workers.map((w) => `${w.pid}:${w.connectedClients}`).join(' ')}, `
      + `${skipped} re-read entries not handed over again, `
      + `run ${Date.now() - killedAt} ms after the kill\n`);
  }));
});
