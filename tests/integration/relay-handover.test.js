'use strict';
// The relay role's handover (classic adapter, CLUSTER_WORKERS=2): one worker per server holds the
// adapter's broadcast subscription and relays other servers' broadcasts to its sibling. A Node
// socket.io server on the official @socket.io/redis-adapter sends a steady stream of broadcasts
// while streamio is reloaded (SIGHUP) several times, so the role moves between workers many
// times under traffic. Every streamio client (they reconnect and rejoin after each drain) must
// get each broadcast at most once, and none may be missing inside one connection; the Node
// server's own clients, which never disconnect, get every broadcast exactly once (the handover
// markers streamio publishes on the adapter's channels never reach them).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { startPeer } = require('./lib/peer');

const CLIENTS = 8;
const RELOADS = 3;
const COUNT = 20000; // the stream's bound: it is stopped well before (about 400 a second)

describe('relay handover under a stream of broadcasts (classic adapter, CLUSTER_WORKERS=2)', { timeout: 240000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let peer;
  const room = h.uniq('handover');

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'true' }, { redis });
    peer = await startPeer(redis, 'classic');
  });

  const logs = h.stopAfter(() => ({ srv: [peer, srv], redis }));

  // A streamio client that reconnects after each drain and rejoins the room; conns[i] lists the
  // seqs its i-th connection received.
  async function streamioClient() {
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

  // streamio's PSUBSCRIBEd adapter connections
  const subscribers = async () => (await redis.call('CLIENT', 'LIST')).split('\n')
    .filter((l) => / name=adapter /.test(l) && /psub=[1-9]/.test(l)).length;

  // Repeated seqs across a client's connections, and seqs missing inside one connection.
  function faults(c) {
    const seen = new Map();
    let dups = 0;
    let holes = 0;
    for (const conn of c.conns) {
      for (const n of conn) {
        if (seen.has(n)) dups++;
        seen.set(n, true);
      }
      if (conn.length === 0) continue;
      const got = new Set(conn);
      const lo = Math.min(...conn);
      const hi = Math.max(...conn);
      for (let n = lo; n <= hi; n++) if (!got.has(n)) holes++;
    }
    return { dups, holes };
  }

  it('applies each broadcast of another server once while the role moves between workers (SIGHUP)', logs(async () => {
    const clients = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < CLIENTS / 2; i++) clients.push(await streamioClient());
      const ws = (await h.healthRetry(srv)).body.workers;
      if (clients.length >= CLIENTS && ws.length === 2 && ws.every((w) => w.connectedClients > 0)) break;
    }
    const nodeClients = await h.connectClients(peer.url, 2);
    await Promise.all(nodeClients.map((s) => h.joinRoom(s, room)));
    const nodeBoxes = nodeClients.map((s) => h.collect(s, 'tick'));
    // one subscriber per server before the stream starts
    await h.waitUntil(async () => (await subscribers()) === 1, {
      timeout: 15000, message: 'one streamio worker PSUBSCRIBEd',
    });

    await peer.call('paced', { room, event: 'tick', count: COUNT, burst: 2, everyMs: 5 });
    const sent = async () => (await peer.call('pacedStatus')).value.sent;
    for (let g = 2; g < 2 + RELOADS; g++) {
      const before = await sent();
      await h.waitUntil(async () => (await sent()) >= before + 200, { timeout: 20000, message: 'the stream flows' });
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
    const summary = `${last} broadcasts, ${RELOADS} reloads: ${dups} applied twice, ${holes} missing\n` +
      report.map((r) => JSON.stringify(r)).join('\n');
    assert.ok(clients.every((c) => c.conns.length > 1), `every client was moved by a drain\n${summary}`);
    assert.equal(dups, 0, `broadcasts applied twice\n${summary}`);
    assert.equal(holes, 0, `broadcasts missing inside a connection\n${summary}`);
    // the Node server's clients: every broadcast exactly once, nothing else (markers included)
    for (const b of nodeBoxes) assert.deepStrictEqual(b.items, Array.from({ length: last }, (_, i) => i + 1));
    // one subscriber again
    await h.waitUntil(async () => (await subscribers()) === 1, {
      timeout: 15000, message: 'one streamio worker PSUBSCRIBEd after the reloads',
    });
    for (const c of clients) h.closeClient(c.socket);
  }));
});
