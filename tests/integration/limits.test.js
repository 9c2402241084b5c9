'use strict';
// Connection and rate limits: MAX_CONNECTIONS_PER_IP refuses the connection past the limit with
// a 503; RATE_LIMIT_* answer a flood with one `error` event, then disconnect a persistent abuser,
// while a well-behaved client on the same server keeps receiving.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { limitCounts } = require('./lib/rawnet');

const EIO_POLL = '/socket.io/?EIO=4&transport=polling';

describe('limits (MAX_CONNECTIONS_PER_IP=3, RATE_LIMIT_EVENTS 5/s burst 5, 3 violations)', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      MAX_CONNECTIONS_PER_IP: '3',
      RATE_LIMIT_EVENTS_PER_SEC: '5',
      RATE_LIMIT_EVENTS_BURST: '5',
      RATE_LIMIT_MAX_VIOLATIONS: '3',
      RATE_LIMIT_JOINS_PER_SEC: '1',
      RATE_LIMIT_JOINS_BURST: '2',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('refuses a connection past the per-address limit and admits one once a slot frees', logs(async () => {
    const before = await limitCounts(srv);
    const a = await h.connectClient(srv.url);
    await h.connectClient(srv.url);
    await h.connectClient(srv.url);
    const r = await fetch(`${srv.url}${EIO_POLL}`);
    assert.equal(r.status, 503);
    assert.deepStrictEqual(await r.json(), { message: 'Too many connections from this address' });
    assert.equal((await limitCounts(srv)).per_ip, before.per_ip + 1);
    h.closeClient(a);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 2,
      { timeout: 5000, message: 'the closed client is gone' });
    const d = await h.connectClient(srv.url);
    assert.ok(d.connected);
    h.closeAllClients();
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 0,
      { timeout: 5000, message: 'all clients gone' });
  }));

  it('answers a flood with one error, disconnects a persistent abuser, spares the others', logs(async () => {
    const room = h.uniq('limits.room');
    const good = await h.connectClient(srv.url);
    const inbox = h.collect(good);
    await h.joinRoom(good, room);
    const bad = await h.connectClient(srv.url);
    const before = await limitCounts(srv);
    const errors = h.collect(bad, 'error');
    const gone = new Promise((resolve) => bad.once('disconnect', resolve));
    for (let i = 0; i < 40; i++) bad.emit('noise', i);
    const [first] = await errors.waitCount(1);
    assert.deepStrictEqual(first, { message: 'Rate limit exceeded' });
    await h.withDeadline(gone, 5000, 'the abuser is disconnected');
    assert.equal(errors.items.length, 1, 'one error per window, not one per packet');
    // RATE_LIMIT_MAX_VIOLATIONS=3: the 4th refusal in the window is the disconnect
    assert.equal((await limitCounts(srv)).rate_events, before.rate_events + 4);
    const id = await redis.call('XADD', room, '*', 'event', 'still-here');
    await inbox.waitFor((m) => m.messageId === id && m.roomId === room);
  }));

  it('refuses joins over RATE_LIMIT_JOINS with an error and a failed ack, and counts them', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errors = h.collect(s, 'error');
    const before = await limitCounts(srv);
    const rooms = [1, 2, 3, 4].map(() => h.uniq('limits.join'));
    const acks = await Promise.all(rooms.map((r) => h.emitAck(s, 'join-room', r)));
    assert.deepStrictEqual(acks, [
      { ok: true, roomId: rooms[0] }, { ok: true, roomId: rooms[1] },
      { ok: false, error: 'Rate limit exceeded' }, { ok: false, error: 'Rate limit exceeded' },
    ]);
    assert.deepStrictEqual(await errors.waitCount(1), [{ message: 'Rate limit exceeded' }]);
    const after = await limitCounts(srv);
    assert.equal(after.rate_joins, before.rate_joins + 2);
    assert.equal(after.rate_events, before.rate_events);
    h.closeClient(s);
  }));
});

describe('MAX_CONNECTIONS=2 and MEMORY_HIGH_WATER_MB=1: 503 and counted', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  before(async () => { redis = await h.startRedis(); });
  after(async () => {
    h.closeAllClients();
    if (redis) await redis.stop();
  });

  it('refuses the connection past MAX_CONNECTIONS', async () => {
    const srv = await h.startStreamio({ CLUSTER_WORKERS: '1', MAX_CONNECTIONS: '2' }, { redis });
    try {
      await h.connectClient(srv.url);
      await h.connectClient(srv.url);
      const r = await fetch(`${srv.url}${EIO_POLL}`);
      assert.equal(r.status, 503);
      assert.deepStrictEqual(await r.json(), { message: 'Server connection limit reached' });
      const c = await limitCounts(srv);
      assert.equal(c.total, 1);
      assert.equal(c.per_ip, 0);
    } finally {
      h.closeAllClients();
      await srv.stop();
    }
  });

  it('sheds new connections above the memory high-water mark', async () => {
    const srv = await h.startStreamio({ CLUSTER_WORKERS: '1', MEMORY_HIGH_WATER_MB: '1' }, { redis });
    try {
      const r = await fetch(`${srv.url}${EIO_POLL}`);
      assert.equal(r.status, 503);
      assert.deepStrictEqual(await r.json(), { message: 'Server is shedding load (memory high-water mark)' });
      assert.equal((await limitCounts(srv)).memory, 1);
      assert.equal((await h.healthRetry(srv)).status, 200, '/health still answers');
    } finally {
      await srv.stop();
    }
  });
});
