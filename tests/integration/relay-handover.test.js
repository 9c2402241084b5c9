'use strict';
// The relay role's handover (CLUSTER_WORKERS=2): one worker per server holds the adapter's
// broadcast subscription and relays other servers' broadcasts to its sibling. A Node socket.io
// server on the official @socket.io/redis-adapter sends a steady stream of broadcasts while
// streamio is reloaded (SIGHUP) several times, so the role moves between workers many times under
// traffic. Every streamio client (they reconnect and rejoin after each drain) must get each
// broadcast at most once, and none may be missing inside one connection; the Node server's own
// clients, which never disconnect, get every broadcast exactly once and nothing else (the
// handover markers streamio publishes never reach them). Classic mode on one Redis (one pattern,
// a marker per namespace); sharded mode on a 3-master Redis Cluster, the Node server on
// createCluster, with rooms whose channels live on several masters (a marker per room channel,
// which the Node server, subscribed to the same channels, receives and drops).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');
const { startCluster } = require('./lib/redis-topologies');

const CLIENTS = 8;
const RELOADS = 3;
const COUNT = 20000; // the stream's bound: it is stopped well before (about 400 a second)

const ROOMS = { classic: 1, sharded: 4 };

for (const mode of ['classic', 'sharded']) describe(`relay handover under a stream of broadcasts (${mode} adapter, CLUSTER_WORKERS=2)`, { timeout: 300000, skip: h.ANCHOR_SKIP }, () => {
  let redis; // sharded: the cluster
  let srv;
  let peer;
  const rooms = [];
  // the node serving a key (sharded: the master owning the room's channel)
  const nodeOf = async (key) => (mode === 'sharded'
    ? redis.slotOwner(await redis.nodes[0].call('CLUSTER', 'KEYSLOT', key)) : redis);
  const channel = (room) => `socket.io#/#${room}#`;

  before(async () => {
    if (mode === 'classic') {
      redis = await h.startRedis();
      srv = await h.startStreamio({ CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'true' }, { redis });
      peer = await startPeer(redis, 'classic');
      rooms.push(h.uniq('handover'));
      return;
    }
    redis = await startCluster({ masters: 3, replicas: 0 });
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'sharded',
      REDIS_CLUSTER_NODES: redis.seeds, REDIS_PORT: String(redis.nodes[0].port),
    });
    peer = await startPeer({ port: redis.nodes[0].port }, 'sharded', { cluster: true });
    // rooms whose channels live on at least two masters
    const owners = new Set();
    for (let i = 0; rooms.length < ROOMS.sharded && i < 200; i++) {
      const room = h.uniq(`handover${i}`);
      const port = (await nodeOf(channel(room))).port;
      if (rooms.length === ROOMS.sharded - 1 && owners.size === 1 && owners.has(port)) continue;
      rooms.push(room);
      owners.add(port);
    }
    assert.ok(owners.size >= 2, 'the rooms\' channels live on several masters');
  });

  const logs = h.stopAfter(() => ({ srv: [peer, srv], redis }));

  // A streamio client that reconnects after each drain and rejoins its room; conns[i] lists the
  // seqs its i-th connection received.
  async function streamioClient(room) {
    const socket = await h.connectClient(srv.url, {
      reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500, randomizationFactor: 0,
    });
    const c = { socket, conns: [], joined: 0 };
    const join = async () => {
      const mine = [];
      c.conns.push(mine);
      c.current = mine;
      socket.on('tick', (n) => mine.push(n));
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await h.joinRoom(socket, room);
          c.joined = c.conns.length;
          return;
        } catch { /* the worker drained meanwhile: the next connect joins */ }
      }
    };
    socket.on('connect', () => { socket.off('tick'); join(); });
    await join();
    return c;
  }

  // One streamio subscriber per server: classic, one PSUBSCRIBEd adapter connection; sharded, each
  // room's channel has two subscribers (the holder and the Node server).
  const oneSubscriber = async () => {
    if (mode === 'classic') {
      return (await redis.call('CLIENT', 'LIST')).split('\n')
        .filter((l) => / name=adapter /.test(l) && /psub=[1-9]/.test(l)).length === 1;
    }
    for (const room of rooms) {
      const [, n] = await (await nodeOf(channel(room))).call('PUBSUB', 'SHARDNUMSUB', channel(room));
      if (Number(n) !== 2) return false;
    }
    return true;
  };

  // Repeated seqs across a client's connections, and seqs missing inside one connection.
  function faults(c) {
    const seen = new Map();
    let dups = 0;
    let holes = 0;
    const twice = []; // [seq, connection of the first, of the second]
    c.conns.forEach((conn, i) => {
      for (const n of conn) {
        if (seen.has(n)) {
          dups++;
          twice.push([n, seen.get(n), i]);
        }
        seen.set(n, i);
      }
      if (conn.length === 0) return;
      const got = new Set(conn);
      const lo = Math.min(...conn);
      const hi = Math.max(...conn);
      for (let n = lo; n <= hi; n++) if (!got.has(n)) holes++;
    });
    return { dups, holes, twice };
  }

  it(`applies each broadcast of another server once while the role moves between workers (SIGHUP, ${mode})`, logs(async () => {
    const clients = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < CLIENTS / 2; i++) clients.push(await streamioClient(rooms[clients.length % rooms.length]));
      const ws = (await h.healthRetry(srv)).body.workers;
      if (clients.length >= CLIENTS && ws.length === 2 && ws.every((w) => w.connectedClients > 0)) break;
    }
    const nodeClients = await h.connectClients(peer.url, 2 * rooms.length);
    await Promise.all(nodeClients.map((s, i) => h.joinRoom(s, rooms[i % rooms.length])));
    const nodeBoxes = nodeClients.map((s) => h.collect(s, 'tick'));
    const stray = [];
    for (const s of nodeClients) s.onAny((ev, ...args) => { if (ev !== 'tick') stray.push([ev, ...args]); });
    // one subscriber per server before the stream starts
    await h.waitUntil(oneSubscriber, { timeout: 15000, message: 'one streamio worker subscribed' });

    // classic: about 400 broadcasts a second; sharded: 4 rooms, about 200 a second each
    const burst = mode === 'classic' ? 2 : 1;
    await peer.call('paced', { rooms, event: 'tick', count: COUNT, burst, everyMs: 5 });
    const sent = async () => (await peer.call('pacedStatus')).value.sent;
    for (let g = 2; g < 2 + RELOADS; g++) {
      const before = await sent();
      await h.waitUntil(async () => (await sent()) >= before + 200, { timeout: 30000, message: 'the stream flows' });
      process.kill(srv.pid, 'SIGHUP');
      await h.waitUntil(() => new RegExp(`reload complete: generation ${g}, 2 workers`).test(srv.handle.output()),
        { timeout: 60000, message: `reload ${g - 1} complete` });
    }
    // every old worker gone; every client back, joined, and receiving on its current connection;
    // then the stream ends
    await h.waitUntil(() => (srv.handle.output().match(/retired pid \d+ exited/g) || []).length === 2 * RELOADS,
      { timeout: 60000, message: 'every replaced worker exited' });
    await h.waitUntil(() => clients.every((c) => c.socket.connected && c.joined === c.conns.length &&
      c.current.length >= 50), { timeout: 30000, message: 'every client receives again after the reloads' });
    const last = (await peer.call('pacedStop')).value;
    assert.ok(last < COUNT, `the stream was still flowing when stopped (${last} of ${COUNT})`);
    await h.waitUntil(() => clients.every((c) => c.current.includes(last)), {
      timeout: 20000, message: `every client's connection got broadcast ${last}`,
    });
    await h.waitUntil(() => nodeBoxes.every((b) => b.items.length >= last), {
      timeout: 20000, message: `the Node clients got ${last} broadcasts`,
    });

    const report = clients.map((c, i) => ({ client: i, connections: c.conns.length, received: c.conns.reduce((a, x) => a + x.length, 0), ...faults(c) }));
    const dups = report.reduce((a, r) => a + r.dups, 0);
    const holes = report.reduce((a, r) => a + r.holes, 0);
    const summary = `${last} broadcasts to each of ${rooms.length} rooms, ${RELOADS} reloads: ${dups} applied twice, ${holes} missing\n` +
      report.map((r) => JSON.stringify(r)).join('\n');
    assert.ok(clients.every((c) => c.conns.length > 1), `every client was moved by a drain\n${summary}`);
    assert.equal(dups, 0, `broadcasts applied twice\n${summary}`);
    assert.equal(holes, 0, `broadcasts missing inside a connection\n${summary}`);
    // the Node server's clients: every broadcast exactly once, nothing else (markers included)
    for (const b of nodeBoxes) assert.deepStrictEqual(b.items, Array.from({ length: last }, (_, i) => i + 1));
    assert.deepStrictEqual(stray, []);
    // every cut at a marker: none given up, no holder let go without seeing one
    assert.doesNotMatch(srv.handle.output(), /no relay handover marker came back|without a relay handover marker/);
    // one subscriber again
    await h.waitUntil(oneSubscriber, { timeout: 15000, message: 'one streamio worker subscribed after the reloads' });
    for (const c of clients) h.closeClient(c.socket);
  }));
});
