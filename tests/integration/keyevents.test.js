'use strict';
// New and deleted streams seen through keyspace notifications in the master
// (STREAM_KEYSPACE_EVENTS=true), with SCAN passes 60 s apart so that only the events can explain
// a pick-up within the tests' waits; and a deleted stream with SCAN only.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

// XREADGROUP calls Redis has run (a lane sends its next read as soon as one comes back).
async function xreads(redis) {
  const m = /cmdstat_xreadgroup:calls=(\d+)/.exec(await redis.call('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

const SUBSCRIBED = /keyspace events: subscribed to __keyevent@0__:xadd and __keyevent@0__:del/;

const logLines = (srv, re) => srv.handle.stderr().split('\n').filter((l) => re.test(l));
const waitLog = (srv, re, n = 1, timeout = 10000) => h.waitUntil(() => logLines(srv, re).length >= n,
  { timeout, message: `${n} log line(s) ${re}` });

describe('keyspace events in the master (DISCOVERY_INTERVAL=60000)', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    assert.deepStrictEqual(await redis.call('CONFIG', 'GET', 'notify-keyspace-events'), ['notify-keyspace-events', '']);
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      DISCOVERY_INTERVAL: '60000',
      STREAM_PATTERN: 'ke.*',
      STREAM_KEYSPACE_EVENTS: 'true',
    }, { redis });
    await waitLog(srv, SUBSCRIBED);
    // the first SCAN pass (an empty keyspace) is over: the next one is 60 s away
    await h.waitUntil(async () => (await redis.call('CONFIG', 'GET', 'notify-keyspace-events'))[1] === 'gtE',
      { timeout: 5000, message: 'notify-keyspace-events gtE' });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('adds the flags it needs to notify-keyspace-events and says so once', logs(async () => {
    assert.deepStrictEqual(await redis.call('CONFIG', 'GET', 'notify-keyspace-events'), ['notify-keyspace-events', 'gtE']);
    assert.equal(logLines(srv, /setting notify-keyspace-events to "Egt" \(was ""\)/).length, 1);
    assert.equal(logLines(srv, SUBSCRIBED).length, 1);
  }));

  it('delivers a stream created after startup without waiting for the next SCAN pass', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('ke.late');
    const outside = h.uniq('other.late');
    await h.joinRoom(s, room);
    await h.joinRoom(s, outside);
    await redis.call('XADD', outside, '*', 'event', 'outside');
    const id = await redis.call('XADD', room, '*', 'event', 'late', 'data', '{"n":1}');
    const msg = await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 15000);
    assert.deepStrictEqual(msg, {
      from: 'service', message: { event: 'late', data: { n: 1 } }, roomId: room, event: 'late', messageId: id,
    });
    // STREAM_PATTERN still applies to what the events bring: the master got the event of
    // `outside` before the one of `room` (one subscription, in order), and ignored it
    assert.equal(await redis.call('XLEN', outside), 1);
    assert.deepStrictEqual(inbox.items.map((m) => m.roomId), [room]);
    assert.equal((await h.healthRetry(srv)).body.streams, 1);
  }));

  it('forgets a deleted stream at once and picks up its re-creation', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('ke.deleted');
    const other = h.uniq('ke.other');
    await h.joinRoom(s, room);
    await h.joinRoom(s, other);
    const first = await redis.call('XADD', room, '*', 'event', 'one');
    await redis.call('XADD', other, '*', 'event', 'other');
    await inbox.waitCount(2, 15000);
    // /health counts what the master and the worker published last: wait for both to know 3
    await h.waitUntil(async () => {
      const b = (await h.healthRetry(srv)).body;
      return b.streams === 3 && b.workers[0].streams === 3;
    }, { timeout: 10000, message: 'master and worker count 3 streams' });
    assert.equal(await redis.call('DEL', room), 1);
    await waitLog(srv, new RegExp(`stream ${room.replace(/\./g, '\\.')} was deleted`));
    await h.waitUntil(async () => {
      const b = (await h.healthRetry(srv)).body;
      return b.streams === 2 && b.workers[0].streams === 2;
    }, { timeout: 10000, message: 'master and worker forget the deleted stream' });
    // the lane goes on with its other streams
    const otherId = await redis.call('XADD', other, '*', 'event', 'after');
    await inbox.waitFor((m) => m.roomId === other && m.messageId === otherId, 10000);
    const second = await redis.call('XADD', room, '*', 'event', 'two');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === second, 15000);
    assert.deepStrictEqual(inbox.items.filter((m) => m.roomId === room).map((m) => m.messageId), [first, second]);
    assert.equal((await h.healthRetry(srv)).body.streams, 3);
    assert.deepStrictEqual(logLines(srv, /XREADGROUP failed|\[ERROR\]/), []);
  }));

  it('subscribes again after Redis restarts', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const port = redis.port;
    await redis.stop();
    redis = await h.startRedis({ port });
    await waitLog(srv, SUBSCRIBED, 2, 20000);
    assert.ok(logLines(srv, /keyspace events: subscription lost/).length >= 1);
    const room = h.uniq('ke.restarted');
    await h.joinRoom(s, room);
    const id = await redis.call('XADD', room, '*', 'event', 'back');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 15000);
    assert.deepStrictEqual(await redis.call('CONFIG', 'GET', 'notify-keyspace-events'), ['notify-keyspace-events', 'gtE']);
  }));
});

describe('keyspace events where CONFIG is disabled', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    // a managed Redis: CONFIG refused, notify-keyspace-events set by its operator
    redis = await h.startRedis({ args: ['--rename-command', 'CONFIG', '', '--notify-keyspace-events', 'KEA'] });
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      DISCOVERY_INTERVAL: '60000',
      STREAM_PATTERN: 'kc.*',
      STREAM_KEYSPACE_EVENTS: 'true',
    }, { redis });
    await waitLog(srv, SUBSCRIBED);
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('warns once that CONFIG is refused and still uses the events', logs(async () => {
    const warn = logLines(srv, /\[WARN\].*CONFIG GET notify-keyspace-events refused.*"Egt"/);
    assert.equal(warn.length, 1, srv.handle.stderr());
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('kc.late');
    await h.joinRoom(s, room);
    const id = await redis.call('XADD', room, '*', 'event', 'managed');
    await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 15000);
  }));
});

describe('a deleted stream with SCAN only (DISCOVERY_INTERVAL=1000)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      DISCOVERY_INTERVAL: '1000',
      STREAM_PATTERN: 'kd.*',
      MAX_CONCURRENT_POOLS: '1',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('drops the stream from its lane and pool without an error loop', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const gone = h.uniq('kd.gone');
    const kept = h.uniq('kd.kept');
    await h.joinRoom(s, gone);
    await h.joinRoom(s, kept);
    await redis.call('XADD', gone, '*', 'event', 'a');
    await redis.call('XADD', kept, '*', 'event', 'b');
    await inbox.waitCount(2, 15000);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.workers[0].streams === 2,
      { timeout: 5000, message: 'both streams read' });
    // a read issued with both keys has come back: the lane is blocked on both keys again
    const reads = await xreads(redis);
    await h.waitUntil(async () => (await xreads(redis)) >= reads + 2,
      { timeout: 5000, message: 'the next blocking reads' });
    assert.equal(await redis.call('DEL', gone), 1);
    // the same lane keeps delivering its other stream
    const id = await redis.call('XADD', kept, '*', 'event', 'after');
    await inbox.waitFor((m) => m.roomId === kept && m.messageId === id, 10000);
    await h.waitUntil(async () => {
      const b = (await h.healthRetry(srv)).body;
      return b.streams === 1 && b.pools === 1 && b.workers[0].streams === 1;
    }, { timeout: 15000, message: 'the next SCAN pass forgets the deleted stream' });
    // one INFO line per discovery pass, not one per stream (those are DEBUG)
    assert.equal(logLines(srv, /discovery: 1 stream gone since the last pass/).length, 1);
    assert.deepStrictEqual(logLines(srv, /\[WARN\]|\[ERROR\]/), []);
    assert.equal(inbox.items.filter((m) => m.roomId === gone).length, 1);
    assert.deepStrictEqual(inbox.items.filter((m) => m.roomId === kept).map((m) => m.message.event), ['b', 'after']);
  }));
});
