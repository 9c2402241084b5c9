'use strict';
// Fan-out with CLUSTER_WORKERS=2: 100 clients over 10 rooms (2 rooms each), 50 entries per room;
// every client gets every entry of its rooms exactly once and in stream order.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const CLIENTS = 100;
const ROOMS = 10;
const PER_ROOM = 50;

describe('fan-out (CLUSTER_WORKERS=2)', { timeout: 120000 }, () => {
  let redis;
  let srv;
  let clients = [];
  const rooms = Array.from({ length: ROOMS }, (_, r) => h.uniq(`fanout.room${r}`));
  // Client i joins rooms i % 10 and (i + 1) % 10: 20 clients per room.
  const roomsOf = (i) => [rooms[i % ROOMS], rooms[(i + 1) % ROOMS]];

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('connects 100 clients and /health counts all of them', logs(async () => {
    clients = await h.connectClients(srv.url, CLIENTS);
    await Promise.all(clients.map((s, i) => Promise.all(roomsOf(i).map((r) => h.joinRoom(s, r)))));
    // Whichever worker answers, the count is the server-wide one.
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === CLIENTS,
      { timeout: 5000, message: `/health connectedClients == ${CLIENTS}` });
    for (let k = 0; k < 6; k++) {
      const { body } = await h.healthRetry(srv);
      assert.equal(body.connectedClients, CLIENTS, `GET /health #${k}`);
    }
  }));

  it('delivers every entry of each room to each member exactly once, in order', logs(async () => {
    assert.equal(clients.length, CLIENTS, 'clients from the previous test');
    const inboxes = clients.map((s) => h.collect(s));
    // Interleave the rooms so per-room order is not an artefact of writing rooms one by one.
    const ids = rooms.map(() => []);
    const pending = [];
    for (let j = 0; j < PER_ROOM; j++) {
      for (let r = 0; r < ROOMS; r++) {
        pending.push(redis.call('XADD', rooms[r], '*', 'event', 'fanout', 'data', JSON.stringify({ r, j }))
          .then((id) => { ids[r][j] = id; }));
      }
    }
    await Promise.all(pending); // one pipelined connection: Redis applies them in send order
    const expectedPerClient = 2 * PER_ROOM;
    try {
      await h.waitUntil(() => inboxes.every((b) => b.items.length >= expectedPerClient),
        { timeout: 30000, interval: 100, message: `${expectedPerClient} messages on every client` });
    } catch (err) {
      const short = inboxes.map((b, i) => [i, b.items.length]).filter(([, n]) => n < expectedPerClient);
      err.message += `\nclients short of messages [index, count]: ${JSON.stringify(short.slice(0, 20))}`;
      throw err;
    }
    await h.sleep(500); // late duplicates would show up here
    for (let i = 0; i < CLIENTS; i++) {
      const items = inboxes[i].items;
      assert.equal(items.length, expectedPerClient, `client ${i} message count`);
      for (const room of roomsOf(i)) {
        const r = rooms.indexOf(room);
        const got = items.filter((m) => m.roomId === room);
        assert.deepStrictEqual(got.map((m) => m.messageId), ids[r], `client ${i} room ${room} ids in order`);
        got.forEach((m, j) => {
          assert.deepStrictEqual(m, {
            from: 'service',
            message: { event: 'fanout', data: { r, j } },
            roomId: room,
            event: 'fanout',
            messageId: ids[r][j],
          });
        });
      }
    }
    for (const room of rooms) {
      await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0,
        { timeout: 5000, message: `XLEN ${room} == 0` });
    }
  }));
});
