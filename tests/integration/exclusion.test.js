'use strict';
// Never consume what is not a room (issue 14): with the default STREAM_PATTERN=*, streamio sits
// beside two Node servers on @socket.io/redis-streams-adapter and must leave the adapter's stream
// whole (no consumer group, no entry deleted), as well as its sharded streams, streamio's own keys
// and whatever STREAM_EXCLUDE lists, while still reading the real rooms it discovers.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

describe('discovery never consumes what is not a room (STREAM_PATTERN=*)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let nodeA;
  let nodeB;

  before(async () => {
    redis = await h.startRedis();
    nodeA = await startPeer(redis, 'streams');
    nodeB = await startPeer(redis, 'streams');
    srv = await h.startStreamio({
      STREAM_PATTERN: '*',
      STREAM_EXCLUDE: 'audit.*, tmp.[0-9]',
      STREAM_KEYSPACE_EVENTS: 'true',
      DISCOVERY_INTERVAL: '200',
      DISCOVERY_SAFETY_INTERVAL: '200', // passes to watch, although key events are on
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));
  require('node:test').after(async () => {
    if (nodeA) await nodeA.stop();
    if (nodeB) await nodeB.stop();
  });

  async function groups(key) {
    return (await redis.call('XINFO', 'GROUPS', key)).length;
  }

  it('logs what it excludes at startup', logs(async () => {
    await h.waitUntil(() => /discovery: streams matching \*, except socket\.io and socket\.io-<n>/.test(srv.handle.stderr()),
      { timeout: 5000, message: 'the exclusion line' });
    const line = srv.handle.stderr().split('\n').find((l) => l.includes('discovery: streams matching'));
    assert.match(line, /socket\.io:\* and sio:session:\* \(streamio's own keys\)/);
    assert.match(line, /STREAM_EXCLUDE audit\.\*, tmp\.\[0-9\]/);
  }));

  it('leaves the adapter stream written by Node servers whole, and Node keeps its broadcasts', logs(async () => {
    const room = h.uniq('node.room');
    const onB = await h.connectClient(nodeB.url);
    await h.joinRoom(onB, room);
    const inbox = h.collect(onB, 'news');
    for (let i = 0; i < 3; i++) await nodeA.call('broadcast', { rooms: [room], event: 'news', args: [i] });
    await inbox.waitCount(3, 5000);
    // streamio's own rooms, written later, are discovered and read: passes have run meanwhile
    const mine = h.uniq('chat.user');
    const c = await h.connectClient(srv.url);
    const got = h.collect(c);
    await h.joinRoom(c, mine);
    const other = ['socket.io-3', 'socket.io--1', 'audit.log', 'tmp.7', 'socket.io:recovery:x'];
    for (const k of other) await redis.call('XADD', k, '*', 'event', 'x', 'data', '{}');
    const id = await redis.call('XADD', mine, '*', 'event', 'e', 'data', '{"n":1}');
    await got.waitFor((m) => m.messageId === id, 8000);
    // two more full SCAN passes after every write above
    await h.scanPasses(srv, 2, { timeout: 8000 });
    assert.equal(await redis.call('XLEN', 'socket.io'), 3);
    assert.equal(await groups('socket.io'), 0);
    for (const k of other) {
      assert.equal(await redis.call('XLEN', k), 1, k);
      assert.equal(await groups(k), 0, k);
    }
    assert.equal(await groups(mine), 1);
    assert.deepStrictEqual(inbox.items, [0, 1, 2]);
  }));
});
