'use strict';
// Stream discovery by SCAN every DISCOVERY_INTERVAL ms (500 here), with STREAM_PATTERN=disc.*.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const INTERVAL = 500;

describe('stream discovery (DISCOVERY_INTERVAL=500, STREAM_PATTERN=disc.*)', { timeout: 90000 }, () => {
  let redis;
  let srv;
  const pre = h.uniq('disc.pre');
  const preIds = [];

  before(async () => {
    redis = await h.startRedis();
    // Written before the server starts: must be drained once discovered.
    for (let i = 0; i < 3; i++) preIds.push(await redis.call('XADD', pre, '*', 'event', 'pre', 'data', String(i)));
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      DISCOVERY_INTERVAL: String(INTERVAL),
      STREAM_PATTERN: 'disc.*',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));
  // n more discovery passes, as streamio counts them; the Node anchor counts none: n intervals
  const passes = (n) => (h.ANCHOR_MODE ? h.sleep(n * INTERVAL) : h.scanPasses(srv, n));

  it('drains entries that were in a stream before the server started', logs(async () => {
    await h.waitUntil(async () => (await redis.call('XLEN', pre)) === 0,
      { timeout: 8000, message: `XLEN ${pre} == 0` });
    // Counters summed over workers may trail the deletion a little.
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.messagesProcessed >= preIds.length,
      { timeout: 3000, message: `messagesProcessed >= ${preIds.length}` });
  }));

  it('discovers a stream created after start and delivers its entries', logs(async () => {
    await passes(3); // a few empty discovery rounds first
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('disc.late');
    await h.joinRoom(s, room);
    const id = await redis.call('XADD', room, '*', 'event', 'late', 'data', '{"late":true}');
    const msg = await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 8000);
    assert.deepStrictEqual(msg, {
      from: 'service', message: { event: 'late', data: { late: true } }, roomId: room, event: 'late', messageId: id,
    });
  }));

  it('delivers, in order, all entries already queued in a stream when it is discovered', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const rooms = Array.from({ length: 20 }, (_, i) => h.uniq(`disc.batch${i}`));
    await Promise.all(rooms.map((r) => h.joinRoom(s, r)));
    const ids = rooms.map(() => []);
    // Queued in one go, so most of them are in the stream before its first read.
    const writes = [];
    for (let j = 0; j < 5; j++) {
      rooms.forEach((r, i) => writes.push(redis.call('XADD', r, '*', 'event', 'batch', 'data', String(j))
        .then((id) => { ids[i][j] = id; })));
    }
    await Promise.all(writes);
    await h.waitUntil(() => inbox.items.length >= 100, { timeout: 10000, message: '100 entries over 20 new streams' });
    await h.sleep(300);
    assert.equal(inbox.items.length, 100);
    rooms.forEach((r, i) => {
      assert.deepStrictEqual(inbox.items.filter((m) => m.roomId === r).map((m) => m.messageId), ids[i], r);
    });
  }));

  it('ignores streams that do not match STREAM_PATTERN and keys that are not streams', logs(async () => {
    const outside = h.uniq('other.stream');
    const notStream = h.uniq('disc.plainkey');
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    await h.joinRoom(s, outside);
    await h.joinRoom(s, notStream);
    const ctl = h.uniq('disc.control');
    await h.joinRoom(s, ctl);
    await redis.call('SET', notStream, 'just a string');
    await redis.call('HSET', h.uniq('disc.hash'), 'f', 'v');
    await redis.call('XADD', outside, '*', 'event', 'outside');
    const ctlId = await redis.call('XADD', ctl, '*', 'event', 'control');
    await inbox.waitFor((m) => m.roomId === ctl && m.messageId === ctlId, 8000);
    await passes(2); // a whole pass after the writes has seen the keys and left them
    assert.equal(await redis.call('XLEN', outside), 1, `${outside} left alone`);
    assert.equal(await redis.call('GET', notStream), 'just a string');
    assert.deepStrictEqual(inbox.items.map((m) => m.roomId), [ctl]);
    assert.equal((await h.healthRetry(srv)).body.redisConnected, true);
  }));

  it('picks a stream up again after it was deleted and re-created', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('disc.recreated');
    await h.joinRoom(s, room);
    const first = await redis.call('XADD', room, '*', 'event', 'one');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === first, 8000);
    await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0, { timeout: 5000, message: 'drained' });
    assert.equal(await redis.call('DEL', room), 1);
    await passes(2); // a whole pass without the stream: discovery has let it go
    const second = await redis.call('XADD', room, '*', 'event', 'two');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === second, 8000);
    assert.deepStrictEqual(inbox.items.map((m) => m.messageId), [first, second]);
  }));
});
