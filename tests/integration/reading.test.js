'use strict';
// How streams are read: lanes holding more streams than one XREADGROUP takes
// (MAX_STREAMS_PER_READ), several pools per lane, small MAX_MESSAGES_BATCH, and quiet periods in
// between (the lane must go back to a blocking read over all its streams and wake up again).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

async function roomsClient(srv, rooms) {
  const s = await h.connectClient(srv.url);
  const inbox = h.collect(s);
  for (const r of rooms) await h.joinRoom(s, r);
  return inbox;
}

function byRoom(items) {
  const out = new Map();
  for (const m of items) {
    if (!out.has(m.roomId)) out.set(m.roomId, []);
    out.get(m.roomId).push(m.messageId);
  }
  return out;
}

describe('reading lanes (MAX_STREAMS_PER_READ=2, POOL_SIZE=3, MAX_CONCURRENT_POOLS=2)', { timeout: 90000 }, () => {
  let redis;
  let srv;
  const rooms = Array.from({ length: 7 }, (_, i) => h.uniq(`lane.s${i}`));

  before(async () => {
    redis = await h.startRedis();
    // The streams exist before the server starts so they share pools and lanes.
    for (const r of rooms) await redis.call('XADD', r, '*', 'event', 'init');
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      MAX_STREAMS_PER_READ: '2',
      POOL_SIZE: '3',
      MAX_CONCURRENT_POOLS: '2',
      MAX_MESSAGES_BATCH: '3',
      READ_BLOCK_MS: '200',
      STREAM_PATTERN: 'lane.*',
    }, { redis });
    for (const r of rooms) {
      await h.waitUntil(async () => (await redis.call('XLEN', r)) === 0,
        { timeout: 8000, message: `${r} drained` });
    }
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('delivers every entry of every stream in order, across sweeps and batches', logs(async () => {
    const inbox = await roomsClient(srv, rooms);
    const want = new Map(rooms.map((r) => [r, []]));
    for (let round = 0; round < 5; round++) {
      for (const r of rooms) {
        want.get(r).push(await redis.call('XADD', r, '*', 'event', 'e', 'data', String(round)));
      }
    }
    // up to an end marker in each stream: an entry read twice would come before it
    assert.deepStrictEqual(byRoom(await h.untilEnd(redis, inbox, rooms, 15000)), want);
  }));

  it('wakes up from a quiet period for any single stream of a lane', logs(async () => {
    const inbox = await roomsClient(srv, rooms);
    // Each entry arrives after a quiet period longer than READ_BLOCK_MS, on a different stream.
    for (const r of [rooms[6], rooms[0], rooms[4], rooms[2]]) {
      await h.sleep(450);
      const id = await redis.call('XADD', r, '*', 'event', 'quiet');
      const got = await inbox.waitFor((m) => m.messageId === id, 5000);
      assert.equal(got.roomId, r);
    }
  }));

  it('drains a backlog larger than MAX_MESSAGES_BATCH in stream order', logs(async () => {
    const inbox = await roomsClient(srv, [rooms[3]]);
    const ids = [];
    const pipeline = [];
    for (let i = 0; i < 40; i++) pipeline.push(redis.call('XADD', rooms[3], '*', 'n', String(i)));
    ids.push(...(await Promise.all(pipeline)));
    await inbox.waitCount(40, 10000);
    assert.deepStrictEqual(inbox.items.map((m) => m.messageId), ids);
    assert.deepStrictEqual(inbox.items.map((m) => m.message.n), ids.map((_, i) => String(i)));
  }));
});
