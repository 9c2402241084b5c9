'use strict';
// The workers of one server hand stream entries to each other over local IPC (worker/siblings),
// with the Redis adapter off and on: 100 clients spread over both workers, 10 rooms, 1000 entries,
// each client gets each entry of its room exactly once and in order. With the adapter on, every
// entry is still PUBLISHed exactly once for other servers; with it off, entries are not published.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const CLIENTS = 100;
const ROOMS = 10;
const ENTRIES = 1000;

for (const adapter of ['false', 'true']) {
  describe(`sibling delivery (CLUSTER_WORKERS=2, SOCKETIO_REDIS_ADAPTER=${adapter})`, { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
    let redis;
    let srv;
    let sub;
    const published = []; // [channel, message] of every PUBLISH seen
    let clients = [];

    before(async () => {
      redis = await h.startRedis();
      sub = await h.RedisClient.connect(redis.port);
      sub.onPush = (v) => {
        if (Array.isArray(v) && v[0] === 'pmessage') published.push([v[2], v[3]]);
      };
      assert.deepStrictEqual(await sub.call('PSUBSCRIBE', '*'), ['psubscribe', '*', 1]);
      srv = await h.startStreamio({
        CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '500', SOCKETIO_REDIS_ADAPTER: adapter,
      }, { redis });
    });

    after(async () => {
      h.closeAllClients();
      if (sub) sub.close();
      if (srv) await srv.stop();
      if (redis) await redis.stop();
    });

    const logs = (fn) => h.withLogs(() => srv, fn);

    it(`spreads ${CLIENTS} clients over both workers`, logs(async () => {
      const body = await h.spreadClients(srv, clients, { min: CLIENTS });
      assert.equal(body.workers.length, 2);
      assert.ok(body.workers.every((w) => w.connectedClients > 0), JSON.stringify(body.workers));
    }));

    it(`delivers ${ENTRIES} entries over ${ROOMS} rooms to every member exactly once, in order`, logs(async () => {
      assert.ok(clients.length >= CLIENTS && clients.length % ROOMS === 0, 'clients from the previous test');
      const rooms = Array.from({ length: ROOMS }, (_, r) => h.uniq(`sib.${adapter}.room${r}`));
      const inboxes = clients.map((s) => h.collect(s));
      await Promise.all(clients.map((s, i) => h.joinRoom(s, rooms[i % ROOMS])));
      const ids = rooms.map(() => []);
      for (let base = 0; base < ENTRIES; base += 100) {
        const writes = [];
        for (let k = base; k < base + 100; k++) {
          const r = k % ROOMS;
          const j = Math.floor(k / ROOMS);
          writes.push(redis.call('XADD', rooms[r], '*', 'event', 'sib', 'data', JSON.stringify({ r, j }))
            .then((id) => { ids[r][j] = id; }));
        }
        await Promise.all(writes);
      }
      const per = ENTRIES / ROOMS;
      await h.waitUntil(() => inboxes.every((b) => b.items.length >= per), {
        timeout: 60000, interval: 200, message: `${per} messages on each of ${clients.length} clients`,
      }).catch((err) => {
        err.message += `\ncounts: ${JSON.stringify(inboxes.map((b) => b.items.length))}`;
        throw err;
      });
      await h.sleep(1000);
      inboxes.forEach((b, i) => {
        const r = i % ROOMS;
        assert.equal(b.items.length, per, `client ${i} count`);
        assert.deepStrictEqual(b.items.map((m) => m.roomId), Array(per).fill(rooms[r]), `client ${i} rooms`);
        assert.deepStrictEqual(b.items.map((m) => m.messageId), ids[r], `client ${i} order`);
        b.items.forEach((m, j) => assert.deepStrictEqual(m.message, { event: 'sib', data: { r, j } }));
      });

      // what went over pub/sub: each entry once on its room's channel (adapter on), none (off)
      // (msgpack arrives utf8-decoded here: the ASCII stream ids survive intact; ids are per
      // stream, so an entry is its room and its id)
      const entryIds = new Map(rooms.map((room, r) => [room, new Set(ids[r])]));
      const seen = new Map();
      for (const [chan, msg] of published) {
        const room = (/^socket\.io#\/#(.*)#$/.exec(chan) || /^streamio-[^#]*#\/#(.*)#$/.exec(chan) || [])[1];
        for (const id of msg.match(/\d{10,}-\d+/g) || []) {
          if (entryIds.has(room) && entryIds.get(room).has(id)) seen.set(`${room} ${id}`, (seen.get(`${room} ${id}`) || 0) + 1);
        }
      }
      if (adapter === 'true') {
        assert.equal(seen.size, ENTRIES, 'every entry published');
        assert.ok([...seen.values()].every((n) => n === 1), 'each entry published once');
      } else {
        assert.equal(seen.size, 0, 'no entry published with the adapter off');
        assert.equal(published.filter(([chan]) => chan.startsWith('streamio-')).length, 0,
          'nothing on the private per-server channels');
      }
    }));
  });
}
