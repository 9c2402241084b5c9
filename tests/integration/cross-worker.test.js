'use strict';
// CLUSTER_WORKERS=2: clients held by both workers all receive every entry of their rooms, exactly
// once and in order, whichever worker reads the stream. Needs /health workers[] (streamio only).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ROOMS = 6;
const PER_ROOM = 5;

describe('cross-worker delivery (CLUSTER_WORKERS=2)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let clients = [];

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('spreads clients over both workers and reports them in workers[]', logs(async () => {
    const body = await h.spreadClients(srv, clients, { step: 20 });
    assert.equal(body.workers.length, 2, 'two workers');
    assert.ok(body.workers.every((w) => w.connectedClients > 0),
      `both workers hold clients: ${JSON.stringify(body.workers)}`);
  }));

  it('delivers to the clients of both workers, exactly once and in order', logs(async () => {
    assert.ok(clients.length >= 20, 'clients from the previous test');
    const rooms = Array.from({ length: ROOMS }, (_, r) => h.uniq(`xw.room${r}`));
    const inboxes = clients.map((s) => h.collect(s));
    await Promise.all(clients.map((s) => Promise.all(rooms.map((r) => h.joinRoom(s, r)))));
    const ids = rooms.map(() => []);
    const writes = [];
    for (let j = 0; j < PER_ROOM; j++) {
      for (let r = 0; r < ROOMS; r++) {
        writes.push(redis.call('XADD', rooms[r], '*', 'event', 'xw', 'data', JSON.stringify({ r, j }))
          .then((id) => { ids[r][j] = id; }));
      }
    }
    await Promise.all(writes);
    const want = ROOMS * PER_ROOM;
    await h.waitUntil(() => inboxes.every((b) => b.items.length >= want), {
      timeout: 20000,
      interval: 100,
      message: `${want} messages on each of ${clients.length} clients`,
    }).catch((err) => {
      err.message += `\ncounts: ${JSON.stringify(inboxes.map((b) => b.items.length))}`;
      throw err;
    });
    await h.sleep(500);
    inboxes.forEach((b, i) => {
      assert.equal(b.items.length, want, `client ${i} count`);
      rooms.forEach((room, r) => {
        const got = b.items.filter((m) => m.roomId === room);
        assert.deepStrictEqual(got.map((m) => m.messageId), ids[r], `client ${i} ${room} order`);
        got.forEach((m, j) => assert.deepStrictEqual(m.message, { event: 'xw', data: { r, j } }));
      });
    });
  }));
});
