'use strict';
// SOCKETIO_REDIS_ADAPTER=streams (issue 14): streamio (CLUSTER_WORKERS=2) and two Node socket.io
// 4.8 servers on @socket.io/redis-streams-adapter 0.3 share one Redis. Broadcasts both ways exactly
// once (rooms, except, binary), stream entries appended once to the adapter's stream, Node's
// fetchSockets, serverSideEmit and broadcasts with acks answered by every streamio worker, and
// the server count Node sees.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

const once = (inbox, pred) => inbox.items.filter(pred).length;

describe('streams adapter: streamio beside Node servers', { timeout: 150000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let nodeA;
  let nodeB;
  let sio = []; // streamio clients, over both workers
  let onB;
  const room = h.uniq('chat.streams');
  const other = h.uniq('chat.other');
  const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-streams-')), 'control.sock');

  before(async () => {
    redis = await h.startRedis();
    nodeA = await startPeer(redis, 'streams');
    nodeB = await startPeer(redis, 'streams');
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2',
      SOCKETIO_REDIS_ADAPTER: 'streams',
      STREAM_PATTERN: 'chat.*',
      SOCKETIO_NAMESPACES: '/admin',
      STREAMIO_CONTROL_SOCKET: sock,
    }, { redis });
    await h.spreadClients(srv, sio, { workers: 2, step: 4, min: 4 });
    for (const s of sio) await h.joinRoom(s, room);
    await h.joinRoom(sio[0], other);
    onB = await h.connectClient(nodeB.url);
    await nodeB.call('broadcast', { rooms: [], event: 'warmup', args: [] });
    // Node joins through its own handler; the room is local to node B
    await h.joinRoom(onB, room);
    // every streamio worker reads the stream and is subscribed before the tests start
    await h.waitUntil(async () => (await nodeA.call('serverCount')).value === 4,
      { timeout: 10000, message: 'Node counts 2 Node servers + 2 streamio workers' });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));
  after(async () => {
    if (nodeA) await nodeA.stop();
    if (nodeB) await nodeB.stop();
  });

  it('appends each stream entry to the adapter stream once and delivers it once everywhere, in order', logs(async () => {
    const before = await redis.call('XLEN', 'socket.io');
    const sioIn = sio.map((s) => h.collect(s));
    const nodeIn = h.collect(onB);
    const ids = [];
    for (let j = 0; j < 6; j++) ids.push(await redis.call('XADD', room, '*', 'event', 'mix', 'data', JSON.stringify({ j })));
    await h.waitUntil(() => [...sioIn, nodeIn].every((b) => b.items.length >= 6),
      { timeout: 15000, message: 'six entries on every client' });
    await h.sleep(500);
    for (const b of [...sioIn, nodeIn]) {
      assert.deepStrictEqual(b.items.map((m) => m.messageId), ids);
      b.items.forEach((m, j) => assert.deepStrictEqual(m, {
        from: 'service', message: { event: 'mix', data: { j } }, roomId: room, event: 'mix', messageId: ids[j],
      }));
    }
    assert.equal(await redis.call('XLEN', 'socket.io'), before + 6);
    const entries = await redis.call('XRANGE', 'socket.io', '-', '+');
    const mine = entries.slice(-6).map(([, f]) => Object.fromEntries(f.reduce((a, v, i) => (i % 2 ? a[a.length - 1].push(v) : a.push([v]), a), [])));
    for (const [j, e] of mine.entries()) {
      assert.equal(e.nsp, '/');
      assert.equal(e.type, '3');
      assert.equal(e.uid.length, 16);
      assert.deepStrictEqual(JSON.parse(e.data), {
        packet: { type: 2, data: ['room:message', { from: 'service', message: { event: 'mix', data: { j } }, roomId: room, event: 'mix', messageId: ids[j] }] },
        opts: { rooms: [room], except: [], flags: {} },
      });
    }
    assert.equal(await redis.call('XLEN', room), 0); /* still consumed like any room */
  }));

  it('delivers Node broadcasts to streamio clients exactly once (rooms, except, all, another namespace)', logs(async () => {
    const ins = sio.map((s) => h.collect(s, 'node:event'));
    await nodeA.call('broadcast', { rooms: [room], event: 'node:event', args: [{ id: 1 }] });
    await nodeA.call('broadcast', { rooms: [room], except: [other], event: 'node:event', args: ['except'] });
    await nodeA.call('broadcast', { event: 'node:event', args: ['all', 2] });
    await nodeA.call('broadcast', { rooms: [sio[1].id], event: 'node:event', args: ['to-sid'] });
    await nodeA.call('broadcast', { nsp: '/admin', event: 'node:event', args: ['admin'] });
    const want = (i) => (i === 0 ? 2 : i === 1 ? 4 : 3);
    await h.waitUntil(() => ins.every((b, i) => b.items.length >= want(i)),
      { timeout: 10000, message: 'Node broadcasts on every streamio client' });
    await h.sleep(500);
    ins.forEach((b, i) => {
      assert.equal(once(b, (m) => m && m.id === 1), 1, `client ${i} {id:1}`);
      assert.equal(once(b, (m) => m === 'except'), i === 0 ? 0 : 1, `client ${i} except`);
      assert.equal(once(b, (m) => m === 'all'), 1, `client ${i} io.emit`);
      assert.equal(once(b, (m) => m === 'to-sid'), i === 1 ? 1 : 0, `client ${i} to its id`);
      assert.equal(b.items.length, want(i), `client ${i} total`);
    });
    const admin = await h.connectClient(`${srv.url}/admin`);
    const adm = h.collect(admin, 'adm');
    await nodeA.call('broadcast', { nsp: '/admin', event: 'adm', args: ['to /admin'] });
    await adm.waitCount(1, 10000);
    assert.deepStrictEqual(adm.items, ['to /admin']);
    h.closeClient(admin);
  }));

  it('delivers Node binary broadcasts with their exact bytes', logs(async () => {
    const got = sio.map(() => []);
    sio.forEach((s, i) => s.on('bin:event', (...args) => got[i].push(args)));
    const bytes = [0, 1, 2, 127, 128, 253, 254, 255];
    await nodeA.call('broadcastBinary', { rooms: [room], event: 'bin:event', bytes, extra: [9, 10] });
    await h.waitUntil(() => got.every((g) => g.length >= 1), { timeout: 10000, message: 'binary on every client' });
    await h.sleep(300);
    for (const g of got) {
      assert.equal(g.length, 1);
      assert.equal(g[0][0].n, 1);
      assert.deepStrictEqual([...Buffer.from(g[0][0].b)], bytes);
      assert.deepStrictEqual([...Buffer.from(g[0][1])], [9, 10]);
    }
  }));

  it('answers Node\'s fetchSockets with every streamio socket, and socketsJoin reaches them', logs(async () => {
    // resolved, not rejected: no worker made Node wait for its requestsTimeout (the adapter
    // rejects fetchSockets when a server's answer is missing then)
    const list = (await nodeA.call('fetchSockets', { rooms: [room] })).value;
    const ids = list.map((s) => s.id).sort();
    assert.deepStrictEqual(ids, [...sio.map((s) => s.id), onB.id].sort());
    const mine = list.find((s) => s.id === sio[0].id);
    assert.deepStrictEqual(mine.rooms.sort(), [sio[0].id, room, other].sort());
    assert.equal(typeof mine.handshake.time, 'string');
    const target = h.uniq('joined');
    await nodeA.call('socketsJoin', { rooms: [other], target });
    await h.waitUntil(async () => (await nodeA.call('fetchSockets', { rooms: [target] })).value.length === 1,
      { timeout: 5000, message: 'the socket in `other` joined the target room' });
    assert.deepStrictEqual((await nodeA.call('fetchSockets', { rooms: [target] })).value.map((s) => s.id), [sio[0].id]);
  }));

  it('acknowledges Node\'s serverSideEmit from every streamio worker', logs(async () => {
    const r = (await nodeA.call('serverSideEmitWithAck', { event: 'ping-servers', args: [1] })).value;
    // node B acks with its name; each streamio worker has no handler and answers undefined (null)
    assert.equal(r.length, 3);
    assert.equal(r.filter((v) => typeof v === 'string' && v.startsWith('node-')).length, 1);
    assert.equal(r.filter((v) => v === null || v === undefined).length, 2);
  }));

  it('answers Node\'s broadcasts with acks: every streamio client in the room, once', logs(async () => {
    for (const [i, s] of sio.entries()) s.on('ask', (q, cb) => cb(`sio${i}:${q}`));
    onB.on('ask', (q, cb) => cb(`node:${q}`));
    const { value } = await nodeA.call('broadcastWithAck', { rooms: [room], event: 'ask', args: ['q'], timeout: 5000 });
    assert.deepStrictEqual([...value].sort(), [...sio.map((_, i) => `sio${i}:q`), 'node:q'].sort());
  }));

  it('streamioctl broadcast and sendroom go out as entries of the adapter stream, to Node and streamio clients', logs(async () => {
    const sioIn = sio.map((s) => h.collect(s, 'notice'));
    const nodeIn = h.collect(onB, 'notice');
    const all = await h.streamioctl(sock, 'broadcast', 'notice', '{"to":"all"}');
    assert.equal(all.code, 0, all.stderr);
    const answer = JSON.parse(all.stdout);
    assert.equal(answer.stream, 'socket.io');
    const [[id, fields]] = await redis.call('XRANGE', 'socket.io', answer.id, answer.id);
    assert.equal(id, answer.id);
    assert.equal(fields[fields.indexOf('nsp') + 1], '/');
    assert.equal(fields[fields.indexOf('type') + 1], '3');
    const toRoom = await h.streamioctl(sock, 'sendroom', other, 'notice', '{"to":"room"}');
    assert.equal(toRoom.code, 0, toRoom.stderr);
    await h.waitUntil(() => [...sioIn, nodeIn].every((b) => b.items.some((m) => m.to === 'all'))
      && sioIn[0].items.some((m) => m.to === 'room'), { timeout: 10000, message: 'the notices' });
    // a last broadcast to everyone: anything sent twice would come before it
    const last = await h.streamioctl(sock, 'broadcast', 'notice', '{"to":"last"}');
    assert.equal(last.code, 0, last.stderr);
    await h.waitUntil(() => [...sioIn, nodeIn].every((b) => b.items.some((m) => m.to === 'last')),
      { timeout: 10000, message: 'the last notice' });
    assert.deepStrictEqual(sioIn[0].items.map((m) => m.to), ['all', 'room', 'last']);
    for (const b of sioIn.slice(1)) assert.deepStrictEqual(b.items.map((m) => m.to), ['all', 'last']);
    assert.deepStrictEqual(nodeIn.items.map((m) => m.to), ['all', 'last']);
    // socketsJoin is an entry of the stream too: Node and streamio sockets of `room` join
    const joined = h.uniq('chat.joined');
    const join = await h.streamioctl(sock, 'join', room, joined);
    assert.equal(join.code, 0, join.stderr);
    const [[, jf]] = await redis.call('XRANGE', 'socket.io', JSON.parse(join.stdout).id, JSON.parse(join.stdout).id);
    assert.equal(jf[jf.indexOf('type') + 1], '4'); // SOCKETS_JOIN
    const sioJ = sio.map((s) => h.collect(s, 'to-joined'));
    const nodeJ = h.collect(onB, 'to-joined');
    await h.waitUntil(async () => {
      const list = (await nodeA.call('fetchSockets', { rooms: [joined] })).value;
      return list.length === sio.length + 1;
    }, { timeout: 10000, message: 'every socket of the room in the joined room' });
    await nodeA.call('broadcast', { rooms: [joined], event: 'to-joined', args: [1] });
    await h.waitUntil(() => [...sioJ, nodeJ].every((b) => b.items.length === 1),
      { timeout: 10000, message: 'a broadcast to the joined room' });
  }));

  it('streamioctl clients <room> and serverside ask every server, Node and streamio, over the adapter\'s channels', logs(async () => {
    const clients = await h.streamioctl(sock, 'clients', room);
    assert.equal(clients.code, 0, clients.stderr);
    const c = JSON.parse(clients.stdout).cluster;
    assert.equal(c.mode, 'streams');
    assert.equal(c.servers, 4); // two Node servers and two streamio workers
    assert.equal(c.complete, true);
    const ids = c.members.flatMap((m) => (m.sockets || []).map((x) => x.id)).sort();
    assert.deepStrictEqual(ids, [...sio.map((s) => s.id), onB.id].sort());
    const before = (await nodeA.call('sse')).value.length;
    const sse = await h.streamioctl(sock, 'serverside', 'ping-servers', '{"from":"ctl"}');
    assert.equal(sse.code, 0, sse.stderr);
    const answers = JSON.parse(sse.stdout).cluster;
    assert.equal(answers.responses, 4);
    const got = (await nodeA.call('sse')).value.slice(before);
    assert.deepStrictEqual(got, [[{ from: 'ctl' }]]);
  }));
});
