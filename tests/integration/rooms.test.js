'use strict';
// join-room / leave-room: acks, MAX_ROOMS_PER_SOCKET, invalid room ids, leave stops delivery.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

const LIMIT = 'Max rooms limit reached';
const INVALID = 'Invalid room id';

describe('rooms (MAX_ROOMS_PER_SOCKET=3)', { timeout: 90000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1', MAX_ROOMS_PER_SOCKET: '3', DISCOVERY_INTERVAL: '500' },
      { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('acks join-room and leave-room with {ok:true, roomId}', logs(async () => {
    const s = await h.connectClient(srv.url);
    const room = h.uniq('rooms.ack');
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room });
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room }, 'join twice');
    assert.deepStrictEqual(await h.emitAck(s, 'leave-room', room), { ok: true, roomId: room });
    const other = h.uniq('rooms.never-joined');
    assert.deepStrictEqual(await h.emitAck(s, 'leave-room', other), { ok: true, roomId: other },
      'leaving a room the socket is not in');
    h.closeClient(s);
  }));

  it('refuses a join over MAX_ROOMS_PER_SOCKET with an error event and ack', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errors = h.collect(s, 'error');
    const rooms = [1, 2, 3, 4, 5].map((i) => h.uniq(`rooms.limit${i}`));
    for (const r of rooms.slice(0, 3)) {
      assert.deepStrictEqual(await h.emitAck(s, 'join-room', r), { ok: true, roomId: r });
    }
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', rooms[3]), { ok: false, error: LIMIT });
    const [ev] = await errors.waitCount(1, 3000);
    assert.deepStrictEqual(ev, { message: LIMIT });
    // Re-joining a room it is already in is not "over" the limit.
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', rooms[0]), { ok: true, roomId: rooms[0] });
    // Leaving one frees a slot.
    assert.deepStrictEqual(await h.emitAck(s, 'leave-room', rooms[1]), { ok: true, roomId: rooms[1] });
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', rooms[4]), { ok: true, roomId: rooms[4] });
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', rooms[3]), { ok: false, error: LIMIT });
    await errors.waitCount(2, 3000);
    assert.deepStrictEqual(errors.items, [{ message: LIMIT }, { message: LIMIT }]);

    // The refused room really was not joined; the accepted ones were.
    const inbox = h.collect(s);
    const idRefused = await redis.call('XADD', rooms[3], '*', 'event', 'refused');
    const idJoined = await redis.call('XADD', rooms[4], '*', 'event', 'joined');
    const idLeft = await redis.call('XADD', rooms[1], '*', 'event', 'left');
    await inbox.waitFor((m) => m.roomId === rooms[4] && m.messageId === idJoined, 10000);
    await h.waitUntil(async () => (await redis.call('XLEN', rooms[3])) === 0
      && (await redis.call('XLEN', rooms[1])) === 0, { timeout: 5000, message: 'other entries consumed' });
    await h.sleep(300);
    // Ids are per stream (all three may be equal): compare room and id.
    assert.deepStrictEqual(inbox.items.map((m) => [m.roomId, m.messageId]), [[rooms[4], idJoined]],
      `not delivered: ${rooms[3]} ${idRefused} (refused), ${rooms[1]} ${idLeft} (left)`);
    h.closeClient(s);
  }));

  it('a join without an ack callback still joins', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('rooms.noack');
    s.emit('join-room', room);
    // Events of one socket are handled in order: once this ack arrives the first join is done.
    await h.joinRoom(s, h.uniq('rooms.noack.barrier'));
    const id = await redis.call('XADD', room, '*', 'event', 'noack');
    const msg = await inbox.waitFor((m) => m.roomId === room && m.messageId === id, 10000);
    assert.equal(msg.message.event, 'noack');
    h.closeClient(s);
  }));

  it('rejects invalid room ids with an error event and ack', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errors = h.collect(s, 'error');
    const bad = [
      ['empty string', ''],
      ['513 chars', 'r'.repeat(513)],
      ['number', 123],
      ['null', null],
      ['object', { room: 'x' }],
      ['array', ['x']],
      ['boolean', true],
    ];
    for (const [what, value] of bad) {
      assert.deepStrictEqual(await h.emitAck(s, 'join-room', value), { ok: false, error: INVALID }, what);
    }
    // No argument at all (and no ack): only the error event can answer.
    s.emit('join-room');
    await errors.waitCount(bad.length + 1, 3000);
    await h.sleep(100);
    assert.equal(errors.items.length, bad.length + 1);
    for (const e of errors.items) assert.deepStrictEqual(e, { message: INVALID });
    // Invalid ids never use up room slots; 512 chars is still valid.
    const longest = 'R'.repeat(512);
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', longest), { ok: true, roomId: longest });
    for (let i = 0; i < 2; i++) {
      const r = h.uniq('rooms.after-invalid');
      assert.deepStrictEqual(await h.emitAck(s, 'join-room', r), { ok: true, roomId: r });
    }
    // The socket stays usable.
    assert.equal(s.connected, true);
    h.closeClient(s);
  }));

  it('stops delivering a room to a socket that left it', logs(async () => {
    const room = h.uniq('rooms.leave');
    const [a, b] = await h.connectClients(srv.url, 2);
    const inA = h.collect(a);
    const inB = h.collect(b);
    await h.joinRoom(a, room);
    await h.joinRoom(b, room);
    const first = await redis.call('XADD', room, '*', 'event', 'before-leave');
    await inA.waitFor((m) => m.messageId === first, 10000);
    await inB.waitFor((m) => m.messageId === first, 10000);

    assert.deepStrictEqual(await h.emitAck(a, 'leave-room', room), { ok: true, roomId: room });
    const second = await redis.call('XADD', room, '*', 'event', 'after-leave');
    await inB.waitFor((m) => m.messageId === second, 10000);
    await h.sleep(500);
    assert.deepStrictEqual(inA.items.map((m) => m.messageId), [first], 'a got nothing after leaving');
    assert.deepStrictEqual(inB.items.map((m) => m.messageId), [first, second]);

    // Re-joining brings delivery back.
    await h.joinRoom(a, room);
    const third = await redis.call('XADD', room, '*', 'event', 'rejoined');
    await inA.waitFor((m) => m.messageId === third, 10000);
    assert.deepStrictEqual(inA.items.map((m) => m.messageId), [first, third]);
    h.closeClient(a);
    h.closeClient(b);
  }));

  it('does not deliver a room to sockets that never joined it', logs(async () => {
    const room = h.uniq('rooms.members');
    const [member, outsider] = await h.connectClients(srv.url, 2);
    const inM = h.collect(member);
    const inO = h.collect(outsider);
    await h.joinRoom(member, room);
    await h.joinRoom(outsider, h.uniq('rooms.elsewhere'));
    const id = await redis.call('XADD', room, '*', 'event', 'members-only');
    await inM.waitFor((m) => m.messageId === id, 10000);
    await h.sleep(500);
    assert.equal(inO.items.length, 0);
    h.closeClient(member);
    h.closeClient(outsider);
  }));
});

// The seed contract under the default limits: a client of the Node server joins its rooms at
// connect, as fast as it can emit, and past MAX_ROOMS_PER_SOCKET (100) hears exactly what the seed
// answers ('Max rooms limit reached': error event and ack), never 'Rate limit exceeded'.
describe('rooms under the default limits (the seed contract)', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('answers joins 101 to 120 at connect with "Max rooms limit reached", as the seed does', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errors = h.collect(s, 'error');
    const rooms = Array.from({ length: 120 }, (_, i) => h.uniq(`rooms.seed${i}`));
    const acks = await Promise.all(rooms.map((r) => h.emitAckTimeout(s, 10000, 'join-room', r)));
    assert.deepStrictEqual(acks.slice(0, 100), rooms.slice(0, 100).map((r) => ({ ok: true, roomId: r })));
    assert.deepStrictEqual(acks.slice(100), rooms.slice(100).map(() => ({ ok: false, error: LIMIT })));
    await errors.waitCount(20, 5000);
    assert.deepStrictEqual(errors.items, rooms.slice(100).map(() => ({ message: LIMIT })));
    // the 100 rooms were joined: an entry of the last one arrives
    const inbox = h.collect(s);
    const id = await redis.call('XADD', rooms[99], '*', 'event', 'joined-at-connect');
    await inbox.waitFor((m) => m.roomId === rooms[99] && m.messageId === id, 10000);
    assert.equal(s.connected, true);
    h.closeClient(s);
  }));
});

// io.to(<socket id>) names that socket, never a client that joined a room of that name (Node lets
// any client join any name, the seed answers {ok:true}, and streamio answers the same): from a Node
// server of the cluster, from the emitter, from streamioctl, and for a stream of that name. One
// worker: a worker that does not hold the socket cannot tell its id from a room name.
describe('a room named like another socket\'s id (SOCKETIO_REDIS_ADAPTER=true)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let peer;
  const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-rooms-')), 'ctl.sock');

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ SOCKETIO_REDIS_ADAPTER: 'true', STREAMIO_CONTROL_SOCKET: sock }, { redis });
    peer = await startPeer(redis, 'classic');
  });

  const logs = h.stopAfter(() => ({ srv: [peer, srv], redis }));

  it('reaches only that socket, whoever sends it', logs(async () => {
    const victim = await h.connectClient(srv.url);
    const squatter = await h.connectClient(srv.url);
    const shared = h.uniq('rooms.shared');
    assert.deepStrictEqual(await h.emitAck(squatter, 'join-room', victim.id), { ok: true, roomId: victim.id });
    await h.joinRoom(victim, shared);
    await h.joinRoom(squatter, shared);
    const boxes = [victim, squatter].map((s) => ({ sid: h.collect(s, 'to-sid'), entries: h.collect(s) }));
    await h.waitUntil(async () => (await peer.call('serverCount')).value >= 2, { timeout: 10000, message: 'the peer sees streamio' });

    const send = async (target, tag) => {
      await peer.call('broadcast', { rooms: [target], event: 'to-sid', args: [`node:${tag}`] });
      await peer.call('emitter', { rooms: [target], event: 'to-sid', args: [`emitter:${tag}`] });
      const r = await h.streamioctl(sock, 'sendroom', target, 'to-sid', JSON.stringify(`ctl:${tag}`));
      assert.equal(r.code, 0, r.stderr);
      return redis.call('XADD', target, '*', 'event', 'e', 'data', JSON.stringify(tag));
    };
    const first = await send(victim.id, 'id');
    const want = ['ctl:id', 'emitter:id', 'node:id'];
    await h.waitUntil(() => boxes[0].sid.items.length === 3 && boxes[0].entries.items.length === 1,
      { timeout: 15000, message: 'the victim gets what was sent to its id' });
    // the same paths to a room both joined: once the squatter has those, it had its chance
    const last = await send(shared, 'shared');
    await h.waitUntil(() => boxes[1].sid.items.length >= 3 && boxes[1].entries.items.length >= 1,
      { timeout: 15000, message: 'the squatter gets what was sent to the shared room' });
    assert.deepStrictEqual(boxes[1].sid.items.sort(), ['ctl:shared', 'emitter:shared', 'node:shared']);
    assert.deepStrictEqual(boxes[1].entries.items.map((m) => [m.roomId, m.messageId]), [[shared, last]]);
    await h.waitUntil(() => boxes[0].sid.items.length === 6 && boxes[0].entries.items.length === 2,
      { timeout: 15000, message: 'the victim gets the shared room\'s too' });
    assert.deepStrictEqual(boxes[0].sid.items.slice(0, 3).sort(), want);
    assert.deepStrictEqual(boxes[0].entries.items.map((m) => [m.roomId, m.messageId]), [[victim.id, first], [shared, last]]);
  }));
});
