'use strict';
// Connection state recovery across Node and streamio (issue 14): streamio (2 workers,
// SOCKETIO_REDIS_ADAPTER=streams, CONNECTION_RECOVERY=true) and a Node socket.io 4.8 server on
// @socket.io/redis-streams-adapter 0.3 (connectionStateRecovery on) share one Redis. A client that
// loses its transport on one of them and reconnects to the other gets `recovered === true`, its
// socket id and rooms back, and every packet it missed from the adapter's stream after its
// offset (rooms and except filtered as Node does), once, in order, offsets included.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { io } = require('socket.io-client');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

describe('connection state recovery between Node and streamio (streams adapter)', {
  timeout: 120000, skip: h.ANCHOR_SKIP,
}, () => {
  let redis;
  let srv;
  let node;
  const sockets = [];

  before(async () => {
    redis = await h.startRedis();
    node = await startPeer(redis, 'streams');
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2',
      SOCKETIO_REDIS_ADAPTER: 'streams',
      CONNECTION_RECOVERY: 'true',
      STREAM_PATTERN: 'rec.*',
    }, { redis });
    // Node counts its own server and both streamio workers once they read and subscribe
    await h.waitUntil(async () => (await node.call('serverCount')).value === 3,
      { timeout: 15000, message: 'Node counts 1 Node server + 2 streamio workers' });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));
  after(async () => {
    for (const s of sockets) s.close();
    if (node) await node.stop();
  });

  // A client of `url` that never reconnects by itself (the test moves it); records every event
  // with all its arguments (the offset is the last one) in arrival order.
  function connect(url) {
    const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 10000 });
    sockets.push(s);
    s.events = [];
    s.onAny((event, ...args) => s.events.push([event, ...args]));
    return h.withDeadline(new Promise((resolve, reject) => {
      s.once('connect', () => resolve(s));
      s.once('connect_error', (err) => reject(err));
    }), 15000, `connect to ${url}`);
  }

  // Reconnects s to `url` (its pid and last offset go with the CONNECT).
  function moveTo(s, url) {
    s.io.uri = url;
    const back = h.withDeadline(new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('connect_error', reject);
    }), 15000, `reconnect to ${url}`);
    s.connect();
    return back;
  }

  const sessionStored = (pid) => h.waitUntil(
    async () => Number(await redis.call('EXISTS', `sio:session:${pid}`)) === 1,
    { timeout: 10000, message: `sio:session:${pid} stored` });

  const until = (s, pred, message) => h.waitUntil(() => pred(s.events), { timeout: 15000, message });

  // The broadcasts the stream holds after `from`, in stream order: {id, event} (event null for a
  // binary one, stored as base64 msgpack). Producers append concurrently: the stream, not the
  // order of the calls, is the order every server delivers in.
  async function streamAfter(from) {
    const entries = await redis.call('XRANGE', 'socket.io', `(${from}`, '+');
    return entries.map(([id, fields]) => {
      const data = fields[fields.indexOf('data') + 1];
      let event = null;
      try {
        event = JSON.parse(data).packet.data[0];
      } catch { /* binary */ }
      return { id, event };
    });
  }
  const streamIds = async (from) => (await streamAfter(from)).map((e) => e.id);

  it('a client dropped by Node recovers on streamio: id, rooms, missed packets once and in order', logs(async () => {
    const room = h.uniq('rec.node');
    const elsewhere = h.uniq('rec.elsewhere');
    const s = await connect(node.url);
    await h.joinRoom(s, room); // Node's handler
    await node.call('broadcast', { rooms: [room], event: 'before', args: [0] });
    await until(s, (ev) => ev.length === 1, 'the first broadcast on Node');
    const sid = s.id;
    const pid = s._pid;
    const offset = s._lastOffset;
    assert.match(offset, /^\d+-\d+$/);
    const gone = new Promise((resolve) => s.once('disconnect', resolve));
    await node.call('dropTransport', { sid });
    assert.equal(await h.withDeadline(gone, 10000, 'the drop'), 'transport close');
    await sessionStored(pid);

    // while away: Node broadcasts (to its room, elsewhere, everyone but its room, binary) and an
    // entry of its room that streamio reads and appends to the adapter's stream
    await node.call('broadcast', { rooms: [room], event: 'missed', args: [1, { a: 'x' }] });
    await node.call('broadcast', { rooms: [elsewhere], event: 'not-mine', args: [2] });
    await node.call('broadcast', { rooms: [], except: [room], event: 'not-mine', args: [3] });
    await node.call('broadcastBinary', { rooms: [room], event: 'bin', bytes: [1, 2, 3], extra: [9] });
    await node.call('broadcast', { rooms: [], event: 'missed', args: [4] });
    const entryId = await redis.call('XADD', room, '*', 'event', 'chat', 'data', '{"n":5}');
    await h.waitUntil(async () => (await streamAfter(offset)).length === 6,
      { timeout: 10000, message: 'five Node broadcasts and the entry streamio appends, in the stream' });
    const stream = await streamAfter(offset);
    const due = stream.filter((e) => e.event !== 'not-mine');

    await moveTo(s, srv.url);
    assert.equal(s.recovered, true, 'recovered on streamio');
    assert.equal(s.id, sid, 'the same socket id');
    // the missed packets come before the CONNECT reply: all there now, or never
    const got = s.events.slice(1);
    assert.deepStrictEqual(got.map((e) => [e[0], e[e.length - 1]]),
      due.map((e) => [e.event || 'bin', e.id]), 'what it missed, once, in stream order, with offsets');
    const by = (name) => got.filter((e) => e[0] === name);
    assert.deepStrictEqual(by('missed').map((e) => e.slice(1, -1)), [[1, { a: 'x' }], [4]]);
    const [bin] = by('bin');
    assert.equal(bin[1].n, 1);
    assert.deepStrictEqual([...bin[1].b], [1, 2, 3]);
    assert.deepStrictEqual([...bin[2]], [9]);
    const [entry] = by('room:message');
    assert.equal(entry[1].messageId, entryId);
    assert.deepStrictEqual(entry[1].message, { event: 'chat', data: { n: 5 } });
    assert.equal(Number(await redis.call('EXISTS', `sio:session:${pid}`)), 0, 'the session was taken');

    // its room is back: live broadcasts of Node and entries reach it on streamio, once
    await node.call('broadcast', { rooms: [room], event: 'live', args: [6] });
    await redis.call('XADD', room, '*', 'event', 'chat', 'data', '{"n":7}');
    await until(s, (ev) => ev.filter((e) => e[0] === 'room:message').length === 2
      && ev.some((e) => e[0] === 'live'), 'live packets on streamio');
    const fetched = (await node.call('fetchSockets', { rooms: [room] })).value;
    assert.deepStrictEqual(fetched.map((x) => x.id), [sid], 'Node finds it in its room, on streamio');
    assert.equal(s.events.filter((e) => e[0] === 'live').length, 1);
  }));

  it('a client dropped by streamio recovers on Node: id, rooms, missed packets once and in order', logs(async () => {
    const room = h.uniq('rec.sio');
    const s = await connect(srv.url);
    await h.joinRoom(s, room); // streamio's join-room
    const first = await redis.call('XADD', room, '*', 'event', 'chat', 'data', '{"n":0}');
    await until(s, (ev) => ev.length === 1, 'the first entry on streamio');
    assert.equal(s.events[0][1].messageId, first);
    const sid = s.id;
    const pid = s._pid;
    const offset = s._lastOffset;
    assert.match(offset, /^\d+-\d+$/);
    s.io.engine.close(); // the transport goes: streamio stores the session as Node would
    await sessionStored(pid);
    const raw = Buffer.from(await redis.call('GET', `sio:session:${pid}`), 'base64');
    const session = require('notepack.io').decode(raw);
    assert.deepStrictEqual({ sid: session.sid, pid: session.pid, rooms: session.rooms },
      { sid, pid, rooms: [sid, room] });

    await node.call('broadcast', { rooms: [room], event: 'missed', args: [1] });
    await node.call('broadcast', { rooms: [], except: [room], event: 'not-mine', args: [2] });
    const entry = await redis.call('XADD', room, '*', 'event', 'chat', 'data', '{"n":3}');
    await h.waitUntil(async () => (await streamIds(offset)).length === 3,
      { timeout: 10000, message: 'streamio appends the entry to the adapter stream' });
    const due = (await streamAfter(offset)).filter((e) => e.event !== 'not-mine');

    await moveTo(s, node.url);
    assert.equal(s.recovered, true, 'recovered on Node');
    assert.equal(s.id, sid, 'the same socket id');
    assert.deepStrictEqual((await node.call('recovered')).value.includes(sid), true);
    await until(s, (ev) => ev.length >= 3, 'the missed packets from Node');
    const got = s.events.slice(1);
    assert.deepStrictEqual(got.map((e) => [e[0], e[e.length - 1]]), due.map((e) => [e.event, e.id]));
    assert.deepStrictEqual(got.find((e) => e[0] === 'missed').slice(1, -1), [1]);
    assert.equal(got.find((e) => e[0] === 'room:message')[1].messageId, entry);
    // Node put it back in its room
    const local = (await node.call('localSockets')).value.find((x) => x.id === sid);
    assert.ok(local && local.rooms.includes(room), 'in its room on Node');
  }));

  it('an unknown pid or an offset gone from the stream is not recovered', logs(async () => {
    const s = await connect(srv.url);
    const room = h.uniq('rec.gone');
    await h.joinRoom(s, room);
    await redis.call('XADD', room, '*', 'event', 'chat', 'data', '{}');
    await until(s, (ev) => ev.length === 1, 'an entry');
    const sid = s.id;
    s._lastOffset = '1-1'; // not in the stream
    s.io.engine.close();
    await sessionStored(s._pid);
    await moveTo(s, srv.url);
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, sid);
  }));
});
