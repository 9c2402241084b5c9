'use strict';
// Mixed cluster (issue 5): streamio with CLUSTER_WORKERS=2 and a Node socket.io server using
// @socket.io/redis-adapter share rooms through one Redis, in classic and in sharded mode; the
// redis-emitter reaches streamio clients (classic). Exact payloads and counts in both directions,
// the adapter requests Node servers send, malformed messages, and the loss of pub/sub.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-mixed-'));
const ctlBin = () => path.join(path.dirname(process.env.STREAMIO_BIN || ''), 'streamioctl');

// streamioctl's answer as JSON (asynchronous: the server runs meanwhile); throws on an error.
function ctl(sock, ...args) {
  return new Promise((resolve, reject) => {
    execFile(ctlBin(), ['--socket', sock, ...args], { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`streamioctl ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

const NODE_REQUESTS_TIMEOUT = 5000; // the Node adapter's requestsTimeout (its default)
// broadcastWithAck's timeout: an ack missing then fails the call, so only a hang reaches it (kept
// under peer.call's 15 s deadline, so that the adapter's own error is the one reported)
const ACK_TIMEOUT = 10000;

function exactlyOnce(inbox, pred) {
  return inbox.items.filter(pred).length;
}

for (const mode of ['classic', 'sharded']) {
  describe(`mixed cluster, ${mode} mode (CLUSTER_WORKERS=2 + Node peer)`, { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
    let redis;
    let srv;
    let peer;
    let sio = []; // streamio clients
    let nodeClients = [];
    const room = h.uniq(`mix.${mode}`);
    const other = h.uniq(`mix.${mode}.other`);
    const sock = path.join(tmp, `${mode}.sock`);

    before(async () => {
      redis = await h.startRedis();
      srv = await h.startStreamio({
        CLUSTER_WORKERS: '2',
        SOCKETIO_REDIS_ADAPTER: mode === 'sharded' ? 'sharded' : 'true',
        STREAMIO_CONTROL_SOCKET: sock,
        SOCKETIO_NAMESPACES: '/admin',
      }, { redis });
      peer = await startPeer(redis, mode);
      // clients on both workers: the outage test checks that siblings still share entries
      const spread = (await h.spreadClients(srv, sio, { step: 6 })).workers.every((w) => w.connectedClients > 0);
      assert.ok(spread, 'clients on both workers');
      nodeClients = await h.connectClients(peer.url, 2);
      await Promise.all(sio.map((s) => h.joinRoom(s, room)));
      await h.joinRoom(sio[0], other);
      await Promise.all(nodeClients.map((s) => h.joinRoom(s, room)));
    });

    const logs = h.stopAfter(() => ({ srv: [peer, srv], redis }));

    it('counts every streamio worker as a server (NUMSUB / SHARDNUMSUB)', logs(async () => {
      const r = await h.waitUntil(async () => {
        const { value } = await peer.call('serverCount');
        return value === 3 ? value : null;
      }, { timeout: 10000, message: 'serverCount 3 (Node + 2 workers)' });
      assert.equal(r, 3);
    }));

    it('delivers Node broadcasts to streamio clients exactly once, with except and flags', logs(async () => {
      const inboxes = sio.map((s) => h.collect(s, 'node:event'));
      const nodeIn = nodeClients.map((s) => h.collect(s, 'node:event'));
      await peer.call('broadcast', { rooms: [room], event: 'node:event', args: [{ id: 1, text: 'hi' }] });
      await peer.call('broadcast', { rooms: [room], except: [other], event: 'node:event', args: ['except'] });
      await peer.call('broadcast', { rooms: [room], volatile: true, event: 'node:event', args: ['volatile'] });
      await peer.call('broadcast', { rooms: [room], local: true, event: 'node:event', args: ['local'] });
      await peer.call('broadcast', { event: 'node:event', args: ['all', 2] });
      await peer.call('broadcast', { nsp: '/admin', rooms: [room], event: 'node:event', args: ['admin'] });
      await peer.call('broadcast', { rooms: [sio[1].id], event: 'node:event', args: ['to-sid'] });
      const want = (i) => (i === 0 ? 3 : i === 1 ? 5 : 4);
      await h.waitUntil(() => inboxes.every((b, i) => b.items.length >= want(i)), {
        timeout: 10000, message: 'Node broadcasts on every streamio client',
      });
      await h.sleep(500);
      inboxes.forEach((b, i) => {
        assert.equal(exactlyOnce(b, (m) => m && m.id === 1 && m.text === 'hi'), 1, `client ${i} {id:1}`);
        assert.equal(exactlyOnce(b, (m) => m === 'except'), i === 0 ? 0 : 1, `client ${i} except`);
        assert.equal(exactlyOnce(b, (m) => m === 'volatile'), 1, `client ${i} volatile`);
        assert.equal(exactlyOnce(b, (m) => m === 'local'), 0, `client ${i} local flag`);
        assert.equal(exactlyOnce(b, (m) => m === 'all'), 1, `client ${i} io.emit`);
        assert.equal(exactlyOnce(b, (m) => m === 'admin'), 0, `client ${i} other namespace`);
        assert.equal(exactlyOnce(b, (m) => m === 'to-sid'), i === 1 ? 1 : 0, `client ${i} to its id`);
        assert.equal(b.items.length, want(i), `client ${i} total`);
      });
      // Node's own volatile may skip a busy client: only the other four are certain there
      nodeIn.forEach((b) => {
        assert.equal(b.items.filter((m) => m !== 'volatile').length, 4, 'Node clients get the others');
        assert.ok(exactlyOnce(b, (m) => m === 'volatile') <= 1);
      });
    }));

    it('delivers binary broadcasts from Node (and the emitter) to streamio clients, exact bytes', logs(async () => {
      const got = sio.map(() => []);
      const handlers = sio.map((s, i) => {
        const fn = (...args) => got[i].push(args);
        s.on('bin:event', fn);
        return fn;
      });
      try {
        const bytes = [0, 1, 2, 127, 128, 253, 254, 255];
        await peer.call('broadcastBinary', { rooms: [other], event: 'bin:event', bytes, extra: [9, 10] });
        await peer.call('broadcastBinary', { rooms: [room], event: 'bin:event', bytes: [42], extra: [] });
        if (mode === 'classic') await peer.call('emitterBinary', { rooms: [other], event: 'bin:event', bytes: [7, 0, 7] });
        const want0 = mode === 'classic' ? 3 : 2;
        await h.waitUntil(() => got[0].length >= want0 && got.every((g) => g.length >= 1), {
          timeout: 10000, message: 'binary broadcasts on streamio clients',
        });
        await h.sleep(300);
        const asBytes = (b) => [...Buffer.from(b)];
        const first = got[0].find((args) => args.length === 2 && asBytes(args[0].b).length === bytes.length);
        assert.ok(first, JSON.stringify(got[0]));
        assert.equal(first[0].n, 1);
        assert.deepStrictEqual(asBytes(first[0].b), bytes);
        assert.deepStrictEqual(asBytes(first[1]), [9, 10]);
        got.forEach((g, i) => {
          assert.equal(g.length, i === 0 ? want0 : 1, `client ${i} binary count`);
          const toRoom = g.filter((args) => args.length === 2 && asBytes(args[0].b).length === 1);
          assert.equal(toRoom.length, 1, `client ${i} room broadcast`);
          assert.deepStrictEqual(asBytes(toRoom[0][0].b), [42]);
          assert.deepStrictEqual(asBytes(toRoom[0][1]), []);
        });
        if (mode === 'classic') {
          const em = got[0].filter((args) => args.length === 1);
          assert.equal(em.length, 1);
          assert.deepStrictEqual(asBytes(em[0][0]), [7, 0, 7]);
        }
      } finally {
        sio.forEach((s, i) => s.off('bin:event', handlers[i]));
      }
    }));

    it('shares broadcasts of another namespace (/admin) both ways, exactly once', logs(async () => {
      const sioAdmin = await h.connectClients(`${srv.url}/admin`, 4);
      const nodeAdmin = await h.connectClient(`${peer.url}/admin`);
      try {
        const ins = [...sioAdmin, nodeAdmin].map((s) => h.collect(s, 'adm'));
        const mainIn = [...sio, ...nodeClients].map((s) => h.collect(s, 'adm'));
        await peer.call('broadcast', { nsp: '/admin', event: 'adm', args: [{ from: 'node' }] });
        const r = await ctl(sock, 'broadcast', '--nsp', '/admin', 'adm', '{"from":"streamio"}');
        assert.equal(r.ok, true);
        assert.equal(r.channel, 'socket.io#/admin#');
        await h.waitUntil(() => ins.every((b) => b.items.length >= 2), {
          timeout: 10000, message: '/admin broadcasts on every /admin client',
        });
        // a room in /admin: nobody is in it on the streamio side, Node's clients neither
        await peer.call('broadcast', { nsp: '/admin', rooms: [room], event: 'adm', args: ['room'] });
        await h.sleep(500);
        ins.forEach((b, i) => assert.deepStrictEqual(
          b.items.map((m) => m.from).sort(), ['node', 'streamio'], `/admin client ${i}`));
        mainIn.forEach((b, i) => assert.equal(b.items.length, 0, `main-namespace client ${i}`));
      } finally {
        sioAdmin.forEach((s) => h.closeClient(s));
        h.closeClient(nodeAdmin);
      }
    }));

    it('delivers stream entries read by streamio to Node clients exactly once', logs(async () => {
      const sioIn = sio.map((s) => h.collect(s));
      const nodeIn = nodeClients.map((s) => h.collect(s));
      const ids = [];
      for (let j = 0; j < 5; j++) {
        ids.push(await redis.call('XADD', room, '*', 'event', 'mix', 'data', JSON.stringify({ j })));
      }
      await h.waitUntil(() => [...sioIn, ...nodeIn].every((b) => b.items.length >= 5), {
        timeout: 15000, message: 'five entries on every client',
      });
      await h.sleep(500);
      for (const b of [...sioIn, ...nodeIn]) {
        assert.deepStrictEqual(b.items.map((m) => m.messageId), ids);
        b.items.forEach((m, j) => assert.deepStrictEqual(m, {
          from: 'service', message: { event: 'mix', data: { j } }, roomId: room, event: 'mix', messageId: ids[j],
        }));
      }
    }));

    it('delivers entries of a 20-character stream (socket-id length: main channel in sharded mode)', logs(async () => {
      const name = `s20.${String(process.pid).padStart(8, '0')}`.slice(0, 20).padEnd(20, 'x');
      assert.equal(name.length, 20);
      await h.joinRoom(sio[2], name);
      await h.joinRoom(nodeClients[0], name);
      const ins = [h.collect(sio[2]), h.collect(nodeClients[0])];
      const id = await redis.call('XADD', name, '*', 'event', 'e20', 'data', '"x"');
      await h.waitUntil(() => ins.every((b) => b.items.length >= 1), { timeout: 15000, message: '20-char stream entry' });
      await h.sleep(300);
      for (const b of ins) assert.deepStrictEqual(b.items.map((m) => m.messageId), [id]);
      await h.emitAck(sio[2], 'leave-room', name);
    }));

    it('delivers redis-emitter emits to streamio clients (classic only)', { skip: mode === 'sharded' ? 'the emitter speaks only the classic format' : false }, logs(async () => {
      const inboxes = sio.map((s) => h.collect(s, 'emitted'));
      await peer.call('emitter', { rooms: [room], event: 'emitted', args: [{ id: 1, text: 'hi' }] });
      await peer.call('emitter', { rooms: [room], except: [other], event: 'emitted', args: ['x'] });
      await h.waitUntil(() => inboxes.every((b, i) => b.items.length >= (i === 0 ? 1 : 2)), {
        timeout: 10000, message: 'emitter messages',
      });
      await h.sleep(300);
      inboxes.forEach((b, i) => assert.deepStrictEqual(b.items, i === 0 ? [{ id: 1, text: 'hi' }] : [{ id: 1, text: 'hi' }, 'x']));
      // the emitter's socketsJoin (type 2 without uid) is applied too
      const joined = h.uniq('mix.emitter.joined');
      await peer.call('emitterJoin', { rooms: [other], target: joined });
      await h.waitUntil(async () => (await peer.call('fetchSockets', { rooms: [joined] })).value.length === 1,
        { timeout: 5000, message: 'emitter socketsJoin applied' });
      await peer.call('socketsLeave', { rooms: [other], target: joined });
      await h.waitUntil(async () => (await peer.call('fetchSockets', { rooms: [joined] })).value.length === 0,
        { timeout: 5000, message: 'the emitter-joined room to be left' });
    }));

    it('subscribes per room in sharded mode (dynamic), and unsubscribes when the room goes', { skip: mode === 'classic' ? 'sharded only' : false }, logs(async () => {
      // never 20 characters: a name of a socket id's length travels on the main channel
      const name = h.uniq('mix.dynamic');
      const dyn = name.length === 20 ? `${name}.r` : name;
      const chan = `socket.io#/#${dyn}#`;
      const subs = async () => (await redis.call('PUBSUB', 'SHARDNUMSUB', chan))[1];
      assert.equal(await subs(), 0);
      await h.joinRoom(sio[0], dyn);
      await h.waitUntil(async () => (await subs()) === 1, { timeout: 5000, message: 'SSUBSCRIBE of the room channel' });
      await h.joinRoom(sio[1], dyn);
      assert.equal(await subs(), 1, 'one subscriber per server, whichever worker the clients are on');
      await h.emitAck(sio[0], 'leave-room', dyn);
      await h.emitAck(sio[1], 'leave-room', dyn);
      await h.waitUntil(async () => (await subs()) === 0, { timeout: 5000, message: 'SUNSUBSCRIBE once the room is empty' });
    }));

    it('answers allRooms and fetchSockets without Node waiting for its requestsTimeout', logs(async () => {
      // the sharded (ClusterAdapter) protocol has no allRooms request
      const rooms = mode === 'classic' ? await peer.call('allRooms') : { value: null, ms: 0 };
      if (mode === 'classic') {
        assert.ok(rooms.value.includes(room) && rooms.value.includes(other), JSON.stringify(rooms.value));
        for (const s of sio) assert.ok(rooms.value.includes(s.id), `allRooms lists streamio socket ${s.id}`);
      }
      const fetched = await peer.call('fetchSockets', { rooms: [other] });
      assert.deepStrictEqual(fetched.value.map((s) => s.id), [sio[0].id]);
      assert.deepStrictEqual(new Set(fetched.value[0].rooms), new Set([sio[0].id, room, other]));
      const all = await peer.call('fetchSockets', { rooms: [room] });
      assert.equal(all.value.length, sio.length + nodeClients.length);
      // both resolved: the adapter rejects them when a server has not answered by the timeout
      process.stderr.write(`# ${mode}: allRooms ${rooms.ms} ms, fetchSockets ${fetched.ms} ms (Node timeout ${NODE_REQUESTS_TIMEOUT} ms)\n`);
    }));

    // The cluster members a streamioctl answer lists: this server's two workers, the Node peer.
    function members(j) {
      assert.equal(j.cluster.mode, mode);
      assert.equal(j.cluster.servers, 3);
      assert.equal(j.cluster.responses, 3);
      assert.equal(j.cluster.complete, true);
      const own = j.cluster.members.filter((m) => m.server === 'this');
      const others = j.cluster.members.filter((m) => m.server === 'other');
      assert.deepStrictEqual(own.map((m) => m.worker).sort(), [0, 1]);
      own.forEach((m) => assert.match(m.uid, /^[A-Za-z0-9_-]{16}$/));
      assert.equal(others.length, 1);
      // Node's classic responses do not name their server; its sharded ones carry its uid
      if (mode === 'classic') assert.equal(others[0].uid, null);
      else assert.match(others[0].uid, /^[0-9a-f]{16}$/);
      return { own, node: others[0] };
    }

    it('streamioctl rooms asks the whole cluster (allRooms / fetchSockets) and names each server', logs(async () => {
      const t0 = Date.now();
      const j = await ctl(sock, 'rooms');
      const ms = Date.now() - t0;
      const { own, node } = members(j);
      assert.ok(ms < NODE_REQUESTS_TIMEOUT, `every server answered before the timeout (${ms} ms)`);
      process.stderr.write(`# ${mode}: streamioctl rooms (3 servers answering) ${ms} ms\n`);
      const ownRooms = new Set(own.flatMap((m) => m.rooms));
      assert.deepStrictEqual(ownRooms, new Set([room, other, ...sio.map((s) => s.id)]));
      assert.equal(own.reduce((n, m) => n + m.rooms.length, 0) >= ownRooms.size, true);
      const nodeRooms = (await peer.call('localRooms')).value;
      assert.deepStrictEqual(new Set(node.rooms), new Set(nodeRooms));
      assert.ok(node.rooms.includes(room) && nodeClients.every((c) => node.rooms.includes(c.id)));
      assert.equal(j.cluster.rooms, new Set([...ownRooms, ...nodeRooms]).size);
      // this server's own counts are still there, and agree with what each worker answered
      const sids = new Set(sio.map((s) => s.id));
      assert.equal(j.workers.length, 2);
      for (const m of own) {
        const w = j.workers.find((x) => x.worker === m.worker);
        assert.equal(w.rooms, m.rooms.filter((r) => !sids.has(r)).length, `worker ${m.worker} rooms`);
      }
      assert.equal(j.rooms, j.workers.reduce((n, w) => n + w.rooms, 0));
    }));

    it('streamioctl clients [room] lists streamio and Node sockets with their server', logs(async () => {
      const ids = (ms) => ms.flatMap((m) => m.sockets.map((s) => s.id)).sort();
      const inRoom = await ctl(sock, 'clients', room);
      assert.equal(inRoom.room, room);
      const a = members(inRoom);
      assert.deepStrictEqual(ids(a.own), sio.map((s) => s.id).sort());
      assert.deepStrictEqual(ids([a.node]), nodeClients.map((s) => s.id).sort());
      assert.equal(inRoom.cluster.clients, sio.length + nodeClients.length);
      const inOther = await ctl(sock, 'clients', other);
      const b = members(inOther);
      assert.deepStrictEqual(ids(b.own), [sio[0].id]);
      assert.deepStrictEqual(ids([b.node]), []);
      const s0 = b.own.flatMap((m) => m.sockets)[0];
      assert.deepStrictEqual(new Set(s0.rooms), new Set([sio[0].id, room, other]));
      const all = await ctl(sock, 'clients');
      const c = members(all);
      assert.deepStrictEqual(ids(c.own), sio.map((s) => s.id).sort());
      assert.deepStrictEqual(ids([c.node]), nodeClients.map((s) => s.id).sort());
      assert.equal(all.clients, sio.length);
      assert.equal(all.cluster.clients, sio.length + nodeClients.length);
    }));

    it('streamioctl rooms stops waiting for a silent server after SOCKETIO_REQUESTS_TIMEOUT', logs(async () => {
      // a subscriber counted by NUMSUB/SHARDNUMSUB that never answers (a hung server)
      const silent = net.createConnection(redis.port, h.HOST);
      const chan = mode === 'classic' ? 'socket.io-request#/#' : 'socket.io#/#';
      const cmd = mode === 'classic' ? 'SUBSCRIBE' : 'SSUBSCRIBE';
      await new Promise((resolve) => silent.once('connect', resolve));
      silent.write(`*2\r\n$${cmd.length}\r\n${cmd}\r\n$${chan.length}\r\n${chan}\r\n`);
      await new Promise((resolve) => silent.once('data', resolve));
      try {
        const t0 = Date.now();
        const j = await ctl(sock, 'rooms');
        const ms = Date.now() - t0;
        assert.equal(j.cluster.servers, 4);
        assert.equal(j.cluster.responses, 3);
        assert.equal(j.cluster.complete, false);
        assert.equal(j.cluster.members.length, 3); // what the live servers answered is kept
        assert.ok(ms >= NODE_REQUESTS_TIMEOUT - 200 && ms < NODE_REQUESTS_TIMEOUT + 4000, `${ms} ms`);
        process.stderr.write(`# ${mode}: streamioctl rooms with a silent server: ${ms} ms (timeout ${NODE_REQUESTS_TIMEOUT} ms)\n`);
      } finally {
        silent.destroy();
      }
      await h.waitUntil(async () => (await ctl(sock, 'rooms')).cluster.servers === 3, {
        timeout: 10000, message: 'the silent subscriber gone',
      });
    }));

    it('answers Node fetchSockets with the real handshake of streamio sockets', logs(async () => {
      const hsRoom = h.uniq(`mix.${mode}.hs`);
      const t0 = Date.now();
      const c = await h.connectClient(srv.url, { auth: { who: 'hs' }, query: { extra: 'q 1' } });
      const t1 = Date.now();
      try {
        await h.joinRoom(c, hsRoom);
        await h.joinRoom(nodeClients[1], hsRoom);
        const got = (await peer.call('fetchSockets', { rooms: [hsRoom] })).value;
        assert.equal(got.length, 2);
        const mine = got.find((s) => s.id === c.id);
        const nodes = got.find((s) => s.id === nodeClients[1].id);
        const hs = mine.handshake;
        assert.deepStrictEqual(Object.keys(hs).sort(), Object.keys(nodes.handshake).sort());
        const port = new URL(srv.url).port;
        assert.equal(hs.headers.host, `127.0.0.1:${port}`);
        assert.equal(hs.headers.upgrade, 'websocket');
        assert.equal(hs.headers['sec-websocket-version'], '13');
        assert.equal(hs.address, '127.0.0.1');
        assert.equal(hs.xdomain, false);
        assert.equal(hs.secure, false);
        assert.ok(hs.issued >= t0 - 1000 && hs.issued <= t1 + 1000, `issued ${hs.issued} in [${t0}, ${t1}]`);
        assert.equal(Math.floor(Date.parse(hs.time) / 1000), Math.floor(hs.issued / 1000), hs.time);
        assert.deepStrictEqual(hs.query, { extra: 'q 1', EIO: '4', transport: 'websocket' });
        assert.match(hs.url, /^\/socket\.io\/\?/);
        assert.deepStrictEqual(Object.fromEntries(new URL(hs.url, 'http://x').searchParams), hs.query);
        assert.deepStrictEqual(hs.auth, { who: 'hs' });
        assert.deepStrictEqual(new Set(mine.rooms), new Set([c.id, hsRoom]));
      } finally {
        h.closeClient(c);
        await peer.call('socketsLeave', { rooms: [hsRoom], target: hsRoom });
      }
    }));

    it('applies socketsJoin / socketsLeave from Node to streamio sockets', logs(async () => {
      const joined = h.uniq(`mix.${mode}.joined`);
      await peer.call('socketsJoin', { rooms: [other], target: joined });
      const inboxes = sio.map((s) => h.collect(s, 'joined:event'));
      await h.waitUntil(async () => (await peer.call('fetchSockets', { rooms: [joined] })).value.length === 1,
        { timeout: 5000, message: 'the joined room to exist' });
      await peer.call('broadcast', { rooms: [joined], event: 'joined:event', args: [1] });
      await h.waitUntil(() => inboxes[0].items.length === 1, { timeout: 5000, message: 'joined-room delivery' });
      await peer.call('socketsLeave', { rooms: [other], target: joined });
      await h.waitUntil(async () => (await peer.call('fetchSockets', { rooms: [joined] })).value.length === 0,
        { timeout: 5000, message: 'the joined room to be left' });
      await peer.call('broadcast', { rooms: [joined], event: 'joined:event', args: [2] });
      await h.sleep(500);
      assert.deepStrictEqual(inboxes.map((b) => b.items.length), sio.map((_, i) => (i === 0 ? 1 : 0)));
    }));

    it('streamioctl join / leave / serverside make those requests of the whole cluster', logs(async () => {
      const target = h.uniq(`mix.${mode}.ctl`);
      const everyone = [...sio, ...nodeClients].map((s) => s.id).sort();
      const fetched = async () => (await peer.call('fetchSockets', { rooms: [target] })).value.map((s) => s.id).sort();
      const j = await ctl(sock, 'join', room, target);
      assert.deepStrictEqual(j, { ok: true, cluster: { mode, servers: 3 } });
      await h.waitUntil(async () => (await fetched()).length === everyone.length, { timeout: 5000, message: 'socketsJoin applied everywhere' });
      assert.deepStrictEqual(await fetched(), everyone);
      await ctl(sock, 'leave', room, target);
      await h.waitUntil(async () => (await fetched()).length === 0, { timeout: 5000, message: 'socketsLeave applied everywhere' });
      const before = (await peer.call('sse')).value.length;
      const sse = await ctl(sock, 'serverside', 'ping-servers', '{"q":1}');
      const { own, node } = members(sse);
      assert.equal(sse.cluster.answers, 3);
      assert.deepStrictEqual(own.map((m) => m.value), [null, null]); // no server-side handlers
      assert.equal(node.value, `node-${new URL(peer.url).port}`);
      const seen = (await peer.call('sse')).value;
      assert.deepStrictEqual(seen.slice(before), [[{ q: 1 }]]);
    }));

    it('answers serverSideEmit with ack and broadcast with acks (client count and every ack)', logs(async () => {
      await peer.call('serverSideEmit', { event: 'ping-servers', args: ['no-ack'] });
      const sse = await peer.call('serverSideEmitWithAck', { event: 'ping-servers', args: ['q'] });
      // resolved, so before the timeout: Node rejects it when a server's answer is missing then
      assert.equal(sse.value.length, 2, 'one answer per streamio worker');
      for (const s of [...sio, ...nodeClients]) s.on('ack-req', (q, cb) => cb(`client-ack:${q}`));
      const acks = await peer.call('broadcastWithAck', { rooms: [room], event: 'ack-req', args: ['q'], timeout: ACK_TIMEOUT });
      assert.equal(acks.value.length, sio.length + nodeClients.length);
      // resolved, so every ack and every server's client count came before the timeout
      assert.ok(acks.value.every((v) => v === 'client-ack:q'), JSON.stringify(acks.value));
      process.stderr.write(`# ${mode}: serverSideEmitWithAck ${sse.ms} ms, broadcastWithAck ${acks.ms} ms\n`);
    }));

    it('forwards a broadcast ack only from a socket the broadcast reached, once', logs(async () => {
      const ackRoom = h.uniq(`mix.${mode}.ack`);
      const victim = sio[0];
      const slot = (s) => s.io.engine.id.slice(0, 2); // the sid names its worker
      // a socket outside the room on the victim's worker: ack ids are per worker
      let forger;
      for (let i = 0; i < 30 && !forger; i++) {
        const c = await h.connectClient(srv.url);
        if (slot(c) === slot(victim)) forger = c;
        else h.closeClient(c);
      }
      assert.ok(forger, 'a client on the victim\'s worker');
      await h.joinRoom(victim, ackRoom);
      try {
        victim.once('forge-me', async (q, cb) => {
          // the ack ids of a worker run up from 1e9 (one per broadcast with acks): the forger
          // answers the first ones first, twice (within the event rate limit's burst)
          for (let k = 0; k < 2; k++) {
            for (let id = 1e9; id < 1e9 + 20; id++) forger.io.engine.write(`3${id}["forged"]`);
          }
          await h.joinRoom(forger, h.uniq('sync')); // after the forged acks on that connection
          cb(`client-ack:${q}`);
          cb(`client-ack:${q}`); // socket.io-client answers once; the server would drop a repeat
        });
        const acks = await peer.call('broadcastWithAck', { rooms: [ackRoom], event: 'forge-me', args: ['q'], timeout: ACK_TIMEOUT });
        assert.deepStrictEqual(acks.value, ['client-ack:q']);
      } finally {
        h.closeClient(forger);
      }
    }));

    it('drops malformed adapter messages with a log line and keeps working', logs(async () => {
      const inbox = h.collect(sio[0], 'after-garbage');
      // channels and shapes that Node peers ignore safely (they crash on some others, §6)
      if (mode === 'classic') {
        await redis.call('PUBLISH', `socket.io#/#${other}#`, '\x93\xa1x');
        await redis.call('PUBLISH', 'socket.io-request#/#', '{"type":5,"opts":7}');
      } else {
        await redis.call('SPUBLISH', `socket.io#/#${other}#`, '{"type":3,"data":{"packet":1}}');
        await redis.call('SPUBLISH', 'socket.io#/#', '{"type":3,"data":{"opts":[]}}');
      }
      await h.waitUntil(() => /adapter: dropped a message/.test(srv.handle.output()), {
        timeout: 5000, message: 'the drop log line',
      });
      await peer.call('broadcast', { rooms: [other], event: 'after-garbage', args: [1] });
      await inbox.waitCount(1, 5000);
      assert.ok(srv.handle.running, 'streamio still runs');
    }));

    it('survives the loss of pub/sub: /health degraded, local delivery, subscriptions restored', logs(async () => {
      const sioIn = sio.map((s) => h.collect(s, 'restored'));
      await redis.call('CONFIG', 'SET', 'maxclients', '1');
      await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      const during = sio.map((s) => h.collect(s));
      let id;
      try {
        await h.waitUntil(async () => {
          const r = await h.healthRetry(srv);
          return r.body.redisConnected === false;
        }, { timeout: 5000, interval: 50, message: '/health redisConnected false' });
        id = await redis.call('XADD', room, '*', 'event', 'outage', 'data', '1');
        // every streamio client, on both workers: the workers of one server share entries over
        // local IPC, so a pub/sub outage stops neither reading nor delivery
        await h.waitUntil(() => during.every((b) => b.items.some((m) => m.messageId === id)), {
          timeout: 10000, message: 'delivery to every streamio client during the outage',
        }).catch((err) => {
          err.message += `\ncounts: ${JSON.stringify(during.map((b) => b.items.length))}`;
          throw err;
        });
      } finally {
        await redis.call('CONFIG', 'SET', 'maxclients', '10000');
      }
      await h.waitUntil(async () => (await h.healthRetry(srv)).body.redisConnected === true, {
        timeout: 15000, message: '/health redisConnected true again',
      });
      await h.waitUntil(async () => (await peer.call('serverCount')).value === 3, {
        timeout: 15000, message: 'every server subscribed again',
      });
      await peer.call('broadcast', { rooms: [room], event: 'restored', args: ['ok'] });
      await h.waitUntil(() => sioIn.every((b) => b.items.length >= 1), { timeout: 10000, message: 'delivery after reconnect' });
      await h.sleep(300);
      sioIn.forEach((b) => assert.deepStrictEqual(b.items, ['ok']));
      // exactly once: no second copy arrived through the restored subscriptions
      during.forEach((b, i) => assert.deepStrictEqual(b.items.map((m) => m.messageId), [id], `client ${i}`));
    }));

    it('applies disconnectSockets from Node to streamio sockets', logs(async () => {
      const reason = new Promise((resolve) => sio[0].once('disconnect', resolve));
      const stays = sio.slice(1).map((s) => s.connected);
      await peer.call('disconnectSockets', { rooms: [other] });
      assert.equal(await h.withDeadline(reason, 5000, 'disconnect of the socket in the room'), 'io server disconnect');
      await h.sleep(300);
      assert.deepStrictEqual(sio.slice(1).map((s) => s.connected), stays);
      const fetched = await peer.call('fetchSockets', { rooms: [other] });
      assert.deepStrictEqual(fetched.value, []);
    }));

    it('streamioctl disconnect disconnects the named sockets on every server', logs(async () => {
      const gone = [sio[1], nodeClients[1]].map((s) => new Promise((resolve) => s.once('disconnect', resolve)));
      const r = await ctl(sock, 'disconnect', sio[1].id);
      assert.deepStrictEqual(r, { ok: true, cluster: { mode, servers: 3 } });
      await ctl(sock, 'disconnect', nodeClients[1].id, 'close');
      const reasons = await h.withDeadline(Promise.all(gone), 5000, 'both disconnects');
      assert.equal(reasons[0], 'io server disconnect');
      assert.ok(['io server disconnect', 'transport close'].includes(reasons[1]), reasons[1]);
      await h.sleep(300);
      assert.equal(sio[2].connected, true);
      assert.equal(nodeClients[0].connected, true);
    }));

    // Classic mode: one worker of the server PSUBSCRIBEs the broadcasts and relays them to its
    // sibling. Each worker is killed in turn (one of them holds the subscription then, or hands
    // it to the respawned one below it): every time, exactly one subscriber again, and a Node
    // broadcast reaches fresh clients on both workers exactly once.
    it('one subscriber per server (classic: the pattern, sharded: each room) relays to its sibling, and is replaced when killed or reloaded', logs(async () => {
      const subscribers = async () => (await redis.call('CLIENT', 'LIST')).split('\n')
        .filter((l) => / name=adapter /.test(l) && /psub=[1-9]/.test(l)).length;
      const shardSubs = async (chan) => (await redis.call('PUBSUB', 'SHARDNUMSUB', chan))[1];
      const check = async (tag) => {
        if (mode === 'classic') {
          await h.waitUntil(async () => (await subscribers()) === 1, {
            timeout: 15000, message: `${tag}: one PSUBSCRIBEd adapter connection`,
          });
        }
        const fresh = [];
        await h.spreadClients(srv, fresh, { step: 4 });
        const mine = fresh.filter((s) => s.connected);
        assert.equal(new Set(mine.map((s) => s.io.engine.id.slice(0, 2))).size, 2, `${tag}: clients on both workers`);
        const r = h.uniq('relay');
        await Promise.all(mine.map((s) => h.joinRoom(s, r)));
        if (mode === 'sharded') {
          // the room is held on both workers, its channel (and /admin's) by one of them, plus
          // the Node peer's /admin; every worker keeps the main channel (Node counts servers by it)
          for (const [chan, want] of [[`socket.io#/#${r}#`, 1], ['socket.io#/admin#', 2], ['socket.io#/#', 3]]) {
            await h.waitUntil(async () => (await shardSubs(chan)) === want, {
              timeout: 15000, message: `${tag}: ${want} SSUBSCRIBE of ${chan}`,
            });
          }
        }
        const boxes = mine.map((s) => h.collect(s, 'relayed'));
        await peer.call('broadcast', { rooms: [r], event: 'relayed', args: [tag] });
        await h.waitUntil(() => boxes.every((b) => b.items.length >= 1), {
          timeout: 10000, message: `${tag}: the Node broadcast on every streamio client`,
        });
        await h.sleep(300);
        boxes.forEach((b) => assert.deepStrictEqual(b.items, [tag]));
        for (const c of fresh) h.closeClient(c);
      };
      h.closeAllClients(); // what the earlier tests left; the kills end them anyway
      await check('start');
      const pids = (await h.healthRetry(srv)).body.workers.map((w) => w.pid);
      for (const pid of pids) {
        h.killWorker(srv, pid, 'SIGKILL');
        await h.waitUntil(async () => {
          const ws = (await h.healthRetry(srv)).body.workers;
          return ws.length === 2 && !ws.some((w) => w.pid === pid) && ws.every((w) => w.redisConnected);
        }, { timeout: 20000, message: `worker ${pid} respawned` });
        await check(`after killing ${pid}`);
      }
      // a rolling replacement: each draining holder hands over to a sibling without a gap
      process.kill(srv.pid, 'SIGHUP');
      await h.waitUntil(() => /reload complete: generation 2, 2 workers/.test(srv.handle.output()),
        { timeout: 30000, message: 'reload complete' });
      await h.waitUntil(async () => (await h.healthRetry(srv)).body.workers.every((w) => w.redisConnected),
        { timeout: 20000, message: 'both new workers connected' });
      await check('after SIGHUP');
    }));
  });
}
