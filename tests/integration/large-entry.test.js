'use strict';
// One entry larger than a connection's output limit (4 MiB) reaches every client of its room
// that reads, WebSocket and polling alike, and nobody is closed as a slow consumer for it: the
// frame is shared by the recipients, so only what waits behind it counts against the limit, and
// a polling answer that takes its reader longer than the close timeout is not cut off.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

describe('an entry larger than the output limit (CLUSTER_WORKERS=1)', { timeout: 120000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('reaches every reading client of the room, and nobody is disconnected', logs(async () => {
    const room = h.uniq('large.entry');
    const ws = await h.connectClients(srv.url, 3, { transports: ['websocket'] });
    const polling = await h.connectClient(srv.url, { transports: ['polling'] });
    const clients = [...ws, polling];
    const disconnects = [];
    for (const s of clients) s.on('disconnect', (why) => disconnects.push(why));
    await Promise.all(clients.map((s) => h.joinRoom(s, room)));
    const inboxes = clients.map((s) => h.collect(s));
    const text = 'x'.repeat(6 << 20);
    const big = await redis.call('XADD', room, '*', 'event', 'big', 'data', JSON.stringify({ text }));
    const small = await redis.call('XADD', room, '*', 'event', 'small', 'data', '{"n":1}');
    for (const inbox of inboxes) {
      const m = await inbox.waitFor((x) => x.messageId === small, 60000);
      assert.equal(m.message.event, 'small');
      assert.deepStrictEqual(inbox.items.map((x) => x.messageId), [big, small]);
      assert.equal(inbox.items[0].message.data.text.length, text.length);
    }
    assert.deepStrictEqual(disconnects, []);
    assert.ok(clients.every((s) => s.connected));
    const metrics = await new Promise((resolve, reject) => {
      require('node:http').get(`${srv.url}/metrics`, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    const slow = metrics.split('\n').filter((l) => /^streamio_slow_clients_total(\{| )/.test(l));
    assert.ok(slow.length > 0, 'streamio_slow_clients_total is exported');
    for (const l of slow) assert.match(l, / 0$/, l);
    for (const s of clients) h.closeClient(s);
  }));
});
