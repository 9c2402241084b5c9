'use strict';
/*
 * streamio itself (the real binary, master and workers) on the Redis topologies of issue 13: a
 * TLS-only redis-server reached through REDIS_URL (rediss://, user, password, db) with
 * REDIS_TLS_CA_FILE; a primary + replica + 3 sentinels (REDIS_SENTINELS + REDIS_SENTINEL_NAME)
 * through a SENTINEL FAILOVER under a steady producer; a 3-master Redis Cluster
 * (REDIS_CLUSTER_NODES): delivery from every master, the sharded adapter shared with a Node
 * socket.io server on a createCluster client (sharded and classic mode), two streamio servers
 * sharing the streams (one reader per stream), and a graceful CLUSTER FAILOVER, kill -9 of a
 * master and a reshard of 1000 slots under a steady producer. Real socket.io-clients receive the
 * entries. Bad values stop startup with one line naming the variable (exit 2) and never print a
 * password.
 */
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { startCluster, startSentinels, startTlsRedis } = require('./lib/redis-topologies');
const { startPeer } = require('./lib/peer');

const PASSWORD = 'tls-secret-9f2c';

// Every stderr line of a server (master and workers log there).
function logText(srv) {
  return srv.handle.stderr ? srv.handle.stderr() : srv.describe();
}

// A 3-master Redis Cluster and streamio on it (REDIS_CLUSTER_NODES, key events on).
async function startOnCluster({ replicas = 0, env = {} } = {}) {
  const cluster = await startCluster({ masters: 3, replicas });
  const srv = await h.startStreamio({
    REDIS_CLUSTER_NODES: cluster.seeds,
    REDIS_PORT: String(cluster.nodes[0].port),
    CLUSTER_WORKERS: '2',
    STREAM_KEYSPACE_EVENTS: 'true',
    DISCOVERY_INTERVAL: '1000',
    ...env,
  });
  return { cluster, srv };
}

const keyslot = (cluster, key) => cluster.nodes.find((n) => n.handle.running).call('CLUSTER', 'KEYSLOT', key);
// the master serving key now
const ownerOf = async (cluster, key) => cluster.slotOwner(await keyslot(cluster, key));

describe('streamio over TLS with REDIS_URL (rediss://user:pass@host:port/db)', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let tls;
  let srv;

  before(async () => {
    tls = await startTlsRedis({ clientCerts: false });
    assert.equal(await tls.cli('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all'), 'OK');
    assert.equal(await tls.cli('ACL', 'SETUSER', 'default', 'off'), 'OK');
    srv = await h.startStreamio({
      REDIS_URL: `rediss://app:${PASSWORD}@${h.HOST}:${tls.port}/3`,
      REDIS_PORT: String(tls.port),
      REDIS_TLS_CA_FILE: tls.certs.ca,
      CLUSTER_WORKERS: '2',
      STREAM_PATTERN: 'tls.*',
    });
  });

  const logs = h.stopAfter(() => ({ srv, redis: tls }));
  const cli = (...a) => tls.cli('--user', 'app', '--pass', PASSWORD, '--no-auth-warning', ...a);

  it('delivers XADD entries of database 3 to a socket.io-client with the exact payload', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('tls.room');
    await h.joinRoom(s, room);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await cli('-n', '3', 'XADD', room, '*', 'event', 'tls.message', 'data', JSON.stringify({ n: i, via: 'tls' })));
    }
    const got = await inbox.waitCount(5, 30000);
    assert.deepStrictEqual(got.slice(0, 5), ids.map((id, n) => ({
      from: 'service',
      message: { event: 'tls.message', data: { n, via: 'tls' } },
      roomId: room,
      event: 'tls.message',
      messageId: id,
    })));
    // the entries were in db 3 (SELECT from the URL), not in db 0
    assert.equal(await cli('-n', '0', 'EXISTS', room), '0');
    const health = (await h.healthRetry(srv)).body;
    assert.equal(health.redisConnected, true);
    assert.ok(!logText(srv).includes(PASSWORD), 'the password never appears in the logs');
  }));

  it('delivers again after the TLS server restarts', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('tls.again');
    await h.joinRoom(s, room);
    await tls.restart();
    // the restart lost the ACL user (no config file): make it again
    await tls.cli('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all');
    await tls.cli('ACL', 'SETUSER', 'default', 'off');
    const id = await cli('-n', '3', 'XADD', room, '*', 'event', 'back', 'data', '{"ok":true}');
    const msg = await inbox.waitFor((m) => m.messageId === id, 60000);
    assert.deepStrictEqual(msg.message, { event: 'back', data: { ok: true } });
    assert.ok(!logText(srv).includes(PASSWORD), 'the password never appears in the logs');
  }));
});

describe('streamio on Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME)', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let set;
  let srv;

  before(async () => {
    set = await startSentinels({ downAfter: 1000 });
    for (const n of [set.primary, set.replica]) {
      await n.call('CONFIG', 'SET', 'notify-keyspace-events', 'Egt');
    }
    srv = await h.startStreamio({
      REDIS_SENTINELS: set.sentinelAddrs,
      REDIS_SENTINEL_NAME: set.name,
      REDIS_PORT: String(set.primary.port),
      CLUSTER_WORKERS: '2',
      STREAM_PATTERN: 'sen.*',
      STREAM_CLAIM_IDLE_MS: '2000',
      // entries stay in the stream, so the test can compare with what the new primary holds
      STREAM_DELETE_POLICY: 'retain',
    });
  });

  h.stopAfter(() => ({ srv, redis: set }));
  const logs = (fn) => h.withLogs(() => [srv, ...(set ? set.sentinels.map((s) => s.handle) : [])], fn);

  const primaryNode = async () => ((await set.currentPrimaryPort()) === set.primary.port ? set.primary : set.replica);

  it('delivers entries written to the primary the sentinels name', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('sen.first');
    await h.joinRoom(s, room);
    const id = await set.primary.call('XADD', room, '*', 'event', 'hello', 'data', '{"x":1}');
    const msg = await inbox.waitFor((m) => m.messageId === id, 30000);
    assert.deepStrictEqual(msg, {
      from: 'service', message: { event: 'hello', data: { x: 1 } }, roomId: room, event: 'hello', messageId: id,
    });
  }));

  it('survives SENTINEL FAILOVER under a steady producer: every entry the new primary holds is delivered', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const room = h.uniq('sen.failover');
    await h.joinRoom(s, room);
    const before = set.primary.port;
    const accepted = [];
    let refused = 0;
    let stopAt = 0;
    let failedOver = false;
    // a producer that writes every 20 ms to whichever node the sentinels name (bounded: 3000 tries)
    const producer = (async () => {
      for (let i = 0; i < 3000 && !(stopAt && accepted.length >= stopAt); i++) {
        try {
          const node = await primaryNode();
          accepted.push(await node.call('XADD', room, '*', 'event', 'tick', 'data', JSON.stringify({ i })));
        } catch {
          refused += 1; // READONLY on the demoted primary, or its connection killed
        }
        await h.sleep(20);
      }
    })();
    await inbox.waitCount(20, 30000);
    assert.equal(await set.sentinels[0].call('SENTINEL', 'FAILOVER', set.name), 'OK');
    await h.waitUntil(async () => (await set.currentPrimaryPort()) !== before,
      { timeout: 60000, message: 'the sentinels to name the replica' });
    failedOver = true;
    // keep writing well past the switch, then stop
    stopAt = accepted.length + 100;
    await producer;
    assert.ok(failedOver);
    const node = await primaryNode();
    const held = (await node.call('XRANGE', room, '-', '+')).map((e) => e[0]);
    assert.ok(held.length >= 100, `the new primary holds entries (${held.length})`);
    const delivered = new Set();
    await h.waitUntil(() => {
      for (const m of inbox.items) delivered.add(m.messageId);
      return held.every((id) => delivered.has(id));
    }, { timeout: 60000, message: 'every entry of the new primary delivered' });
    const counts = new Map();
    for (const m of inbox.items) counts.set(m.messageId, (counts.get(m.messageId) || 0) + 1);
    const dups = [...counts.values()].filter((c) => c > 1).length;
    const heldSet = new Set(held);
    const lostByRedis = accepted.filter((id) => !heldSet.has(id)).length;
    process.stdout.write(`# sentinel failover: ${accepted.length} accepted, ${refused} refused, ${held.length} held by the new primary, `
      + `${lostByRedis} acknowledged by the old primary but not replicated (Sentinel's write-loss window), `
      + `${dups} delivered twice\n`);
    // duplicates come only from entries read but not yet acknowledged at the switch: bounded
    assert.ok(dups <= 200, `duplicates bounded (${dups})`);
    // per room, entries arrive in stream order (first deliveries)
    const firsts = [];
    const seen = new Set();
    for (const m of inbox.items) {
      if (!seen.has(m.messageId)) firsts.push(m.messageId);
      seen.add(m.messageId);
    }
    const order = firsts.filter((id) => heldSet.has(id));
    assert.deepStrictEqual(order, held, 'first deliveries in stream order');
    assert.equal((await h.healthRetry(srv)).body.redisConnected, true);
  }));
});

describe('Redis topology settings refused at startup', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  const cases = [
    ['a REDIS_URL with a bad port', { REDIS_URL: `rediss://app:${PASSWORD}@127.0.0.1:99999/0` }, 'REDIS_URL'],
    ['a CA file that cannot be read', { REDIS_URL: `rediss://app:${PASSWORD}@127.0.0.1:6380/0`, REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'REDIS_TLS_CA_FILE'],
    ['REDIS_SENTINELS without REDIS_SENTINEL_NAME', { REDIS_SENTINELS: '127.0.0.1:26379', REDIS_PASSWORD: PASSWORD }, 'REDIS_SENTINEL_NAME'],
    ['REDIS_SENTINELS with REDIS_URL', { REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_URL: `redis://u:${PASSWORD}@127.0.0.1:6379` }, 'REDIS_SENTINELS'],
  ];
  for (const [what, vars, name] of cases) {
    it(`${what}: exit 2, one line naming ${name}, no password`, async () => {
      const port = await h.freePort();
      const p = h.spawnStreamio({ HOST: h.HOST, PORT: String(port), CLUSTER_WORKERS: '1', LOG_LEVEL: 'info', ...vars },
        { name: `streamio ${what}` });
      try {
        const res = await h.waitExit(p, 10000);
        assert.ok(res, `exited within 10 s\n${p.describe()}`);
        await p.closed;
        assert.equal(res.code, 2, `exit status 2 (got code=${res.code} signal=${res.signal})\n${p.describe()}`);
        const lines = p.stderr().split('\n').filter((l) => l.includes(name));
        assert.ok(lines.length >= 1, `a stderr line names ${name}; stderr was:\n${p.stderr()}`);
        assert.ok(!p.stderr().includes(PASSWORD) && !p.stdout().includes(PASSWORD), 'the password is never printed');
      } finally {
        await h.stop(p, 3000);
      }
    });
  }
});

describe('streamio on a Redis Cluster (REDIS_CLUSTER_NODES)', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let cluster;
  let srv;

  before(async () => {
    ({ cluster, srv } = await startOnCluster({ env: { STREAM_PATTERN: 'cl.*' } }));
  });

  h.stopAfter(() => ({ srv, redis: cluster }));
  const logs = (fn) => h.withLogs(() => [srv], fn);

  // XADD on the master that owns the key's slot
  const xadd = async (key, ...args) => (await ownerOf(cluster, key)).call('XADD', key, '*', ...args);

  it('delivers entries of streams on every master, each room in stream order', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    const rooms = [];
    const owners = new Set();
    for (let i = 0; i < 12; i++) {
      const room = h.uniq(`cl.room${i}`);
      rooms.push(room);
      owners.add((await ownerOf(cluster, room)).port);
      await h.joinRoom(s, room);
    }
    assert.equal(owners.size, 3, 'the rooms live on all three masters');
    const sent = new Map(rooms.map((r) => [r, []]));
    for (let n = 0; n < 5; n++) {
      for (const room of rooms) {
        sent.get(room).push(await xadd(room, 'event', 'cl.message', 'data', JSON.stringify({ n, room })));
      }
    }
    await inbox.waitCount(60, 60000);
    await h.sleep(300); // nothing more may come
    assert.equal(inbox.items.length, 60, 'each entry exactly once');
    for (const room of rooms) {
      const got = inbox.items.filter((m) => m.roomId === room);
      assert.deepStrictEqual(got, sent.get(room).map((id, n) => ({
        from: 'service', message: { event: 'cl.message', data: { n, room } }, roomId: room, event: 'cl.message', messageId: id,
      })));
    }
    const health = (await h.healthRetry(srv)).body;
    assert.equal(health.redisConnected, true);
    assert.equal(health.streams, 12);
    // one slot per read, every command where its key lives
    assert.doesNotMatch(logText(srv), /CROSSSLOT|XREADGROUP failed|MOVED/);
  }));
});

describe('two streamio servers on a Redis Cluster share the streams (sharded adapter)', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let cluster;
  let a;
  let b;

  before(async () => {
    const env = { SOCKETIO_REDIS_ADAPTER: 'sharded', STREAM_PATTERN: 'own.*', STREAM_CLAIM_IDLE_MS: '60000' };
    ({ cluster, srv: a } = await startOnCluster({ env }));
    b = await h.startStreamio({
      REDIS_CLUSTER_NODES: cluster.seeds, REDIS_PORT: String(cluster.nodes[0].port), CLUSTER_WORKERS: '2',
      STREAM_KEYSPACE_EVENTS: 'true', DISCOVERY_INTERVAL: '1000', ...env,
    });
  });

  h.stopAfter(() => ({ srv: { stop: async () => { if (b) await b.stop(); if (a) await a.stop(); } }, redis: cluster }));
  const logs = (fn) => h.withLogs(() => [a, b], fn);

  it('each stream read by one server, every entry once per socket and in order', logs(async () => {
    // the lease and membership keys live on whichever masters their slots say
    await h.waitUntil(async () => {
      const [oa, ob] = await Promise.all([a, b].map(async (s) => (await h.healthRetry(s)).body.ownership));
      return oa && ob && oa.servers === 2 && ob.servers === 2 && oa.buckets > 0 && ob.buckets > 0 &&
        oa.buckets + ob.buckets === 128;
    }, { timeout: 30000, message: 'both servers hold a share of the buckets' });
    const rooms = [];
    const owners = new Set();
    for (let i = 0; i < 8; i++) {
      const room = h.uniq(`own.room${i}`);
      rooms.push(room);
      owners.add((await ownerOf(cluster, room)).port);
    }
    assert.ok(owners.size >= 2, 'the rooms live on several masters');
    const socks = [];
    for (const room of rooms) {
      for (const srv of [a, b]) {
        const s = await h.connectClient(srv.url);
        await h.joinRoom(s, room);
        socks.push({ room, inbox: h.collect(s) });
      }
    }
    const N = 100;
    for (let n = 0; n < N; n++) {
      await Promise.all(rooms.map(async (r) => (await ownerOf(cluster, r)).call('XADD', r, '*', 'event', 'own', 'data', String(n))));
    }
    const last = [];
    for (const r of rooms) last.push(await (await ownerOf(cluster, r)).call('XADD', r, '*', 'event', 'own-end', 'data', '0'));
    await Promise.all(socks.map((x) => x.inbox.waitFor((m) => m.event === 'own-end', 60000)));
    const inOrder = Array.from({ length: N }, (_, i) => i);
    for (const x of socks) {
      const got = x.inbox.items.filter((m) => m.roomId === x.room && m.event === 'own').map((m) => Number(m.message.data));
      assert.deepStrictEqual(got, inOrder, `${x.room}: every entry once, in order`);
    }
    const readBy = new Map();
    for (const r of rooms) {
      const ports = new Set((await (await ownerOf(cluster, r)).call('XINFO', 'CONSUMERS', r, 'streamio'))
        .map((c) => String(c[1]).split(':').slice(-2)[0]));
      assert.equal(ports.size, 1, `${r} read by one server`);
      for (const p of ports) readBy.set(p, (readBy.get(p) || 0) + 1);
    }
    process.stdout.write(`# two servers on a 3-master cluster: ${rooms.length * N} entries to ${socks.length} ` +
      `sockets, each once and in order; rooms per server ${[...readBy.values()].join('/')}\n`);
  }));
});

describe('sharded adapter on a Redis Cluster with a Node socket.io server (createCluster)', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let cluster;
  let srv;
  let peer;

  before(async () => {
    ({ cluster, srv } = await startOnCluster({ env: { SOCKETIO_REDIS_ADAPTER: 'sharded', STREAM_PATTERN: 'shc.*' } }));
    peer = await startPeer({ port: cluster.nodes[0].port }, 'sharded', { cluster: true });
  });

  h.stopAfter(() => ({ srv: { stop: async () => { if (peer) await peer.stop(); if (srv) await srv.stop(); } }, redis: cluster }));
  const logs = (fn) => h.withLogs(() => [srv, peer], fn);

  it('shares rooms on every master both ways, exactly once', logs(async () => {
    const rooms = [];
    const owners = new Set();
    for (let i = 0; rooms.length < 6 && i < 200; i++) {
      const room = h.uniq(`shc.room${i}`);
      // where the room's sharded channel lives (what SPUBLISH/SSUBSCRIBE must reach)
      const port = (await ownerOf(cluster, `socket.io#/#${room}#`)).port;
      // names hash anywhere: should five land on one master, the sixth is one that does not
      if (rooms.length === 5 && owners.size === 1 && owners.has(port)) continue;
      rooms.push(room);
      owners.add(port);
    }
    assert.ok(owners.size >= 2, 'the rooms\' channels live on several masters');
    const sio = await h.connectClient(srv.url);
    const node = await h.connectClient(peer.url);
    for (const room of rooms) {
      await h.joinRoom(sio, room);
      await h.joinRoom(node, room);
    }
    // streamio -> Node: stream entries read by streamio reach the Node server's clients
    const nodeIn = h.collect(node);
    const sioIn = h.collect(sio);
    const ids = [];
    for (const room of rooms) {
      ids.push(await (await ownerOf(cluster, room)).call('XADD', room, '*', 'event', 'shc', 'data', JSON.stringify({ room })));
    }
    await nodeIn.waitCount(rooms.length, 30000);
    await sioIn.waitCount(rooms.length, 30000);
    // Node -> streamio: a Node broadcast to each room reaches streamio's client
    const fromNode = h.collect(sio, 'node:event');
    // dynamic subscriptions are made when the rooms were joined: wait for them on the owners
    await h.waitUntil(async () => {
      for (const room of rooms) {
        const ch = `socket.io#/#${room}#`;
        const owner = await ownerOf(cluster, ch);
        const [, n] = await owner.call('PUBSUB', 'SHARDNUMSUB', ch);
        if (Number(n) < 2) return false; // streamio's workers and Node
      }
      return true;
    }, { timeout: 30000, message: 'SSUBSCRIBE of every room on its slot owner' });
    for (const room of rooms) await peer.call('broadcast', { rooms: [room], event: 'node:event', args: [room] });
    await fromNode.waitCount(rooms.length, 30000);
    await h.sleep(500); // nothing more may come
    assert.deepStrictEqual(nodeIn.items.map((m) => m.messageId).sort(), [...ids].sort());
    assert.deepStrictEqual(sioIn.items.map((m) => m.messageId).sort(), [...ids].sort());
    assert.deepStrictEqual(fromNode.items.slice().sort(), [...rooms].sort());
    nodeIn.items.forEach((m) => assert.deepStrictEqual(m.message, { event: 'shc', data: { room: m.roomId } }));
  }));
});

describe('classic adapter on a Redis Cluster with a Node socket.io server (createCluster)', { timeout: 180000, skip: h.ANCHOR_SKIP }, () => {
  let cluster;
  let srv;
  let peer;

  before(async () => {
    ({ cluster, srv } = await startOnCluster({ env: { SOCKETIO_REDIS_ADAPTER: 'true', STREAM_PATTERN: 'clc.*' } }));
    peer = await startPeer({ port: cluster.nodes[0].port }, 'classic', { cluster: true });
  });

  h.stopAfter(() => ({ srv: { stop: async () => { if (peer) await peer.stop(); if (srv) await srv.stop(); } }, redis: cluster }));
  const logs = (fn) => h.withLogs(() => [srv, peer], fn);

  // PUBLISH messages the nodes sent each other over the cluster bus so far (at PUBLISH time)
  const busPublishes = async () => {
    let n = 0;
    for (const node of cluster.nodes) {
      const m = /cluster_stats_messages_publish_sent:(\d+)/.exec(await node.call('CLUSTER', 'INFO'));
      n += m ? Number(m[1]) : 0;
    }
    return n;
  };

  it('shares rooms on every master both ways, exactly once (PUBLISH reaches every node)', logs(async () => {
    const rooms = [];
    const owners = new Set();
    for (let i = 0; i < 6; i++) {
      const room = h.uniq(`clc.room${i}`);
      rooms.push(room);
      owners.add((await ownerOf(cluster, room)).port);
    }
    assert.ok(owners.size >= 2, 'the rooms\' streams live on several masters');
    const sio = await h.connectClient(srv.url);
    const node = await h.connectClient(peer.url);
    for (const room of rooms) {
      await h.joinRoom(sio, room);
      await h.joinRoom(node, room);
    }
    // both sides subscribed (classic: a pattern on whichever node each client picked): a probe
    // room gets entries and Node broadcasts until each side has seen one
    const probe = h.uniq('clc.probe');
    await h.joinRoom(sio, probe);
    await h.joinRoom(node, probe);
    const nodeProbe = h.collect(node);
    const sioProbe = h.collect(sio, 'node:probe');
    await h.waitUntil(async () => {
      await (await ownerOf(cluster, probe)).call('XADD', probe, '*', 'event', 'probe', 'data', '0');
      return nodeProbe.items.length > 0;
    }, { timeout: 30000, interval: 500, message: 'an entry read by streamio reaches a Node client' });
    await h.waitUntil(async () => {
      await peer.call('broadcast', { rooms: [probe], event: 'node:probe', args: [] });
      return sioProbe.items.length > 0;
    }, { timeout: 30000, interval: 500, message: 'a Node broadcast reaches a streamio client' });
    const nodeIn = h.collect(node);
    const sioIn = h.collect(sio);
    const fromNode = h.collect(sio, 'node:event');
    const bus0 = await busPublishes();
    // streamio -> Node: entries read by streamio reach the Node server's clients
    const ids = [];
    for (const room of rooms) {
      ids.push(await (await ownerOf(cluster, room)).call('XADD', room, '*', 'event', 'clc', 'data', JSON.stringify({ room })));
    }
    await nodeIn.waitCount(rooms.length, 30000);
    await sioIn.waitCount(rooms.length, 30000);
    const bus = (await busPublishes()) - bus0;
    // Node -> streamio: a Node broadcast to each room, then a marker in the same room (node-redis
    // sends each PUBLISH of a cluster client to any node, so they may come in either order: wait
    // for both)
    for (const room of rooms) {
      await peer.call('broadcast', { rooms: [room], event: 'node:event', args: [room] });
      await peer.call('broadcast', { rooms: [room], event: 'node:event', args: [`end ${room}`] });
    }
    await h.waitUntil(() => rooms.every((r) => fromNode.items.includes(r) && fromNode.items.includes(`end ${r}`)),
      { timeout: 30000, message: 'every Node broadcast and its marker reached the streamio client' });
    // and a last entry behind the others in every room (streamio publishes a room's entries on
    // one connection, routed by the channel's slot: in order): what came before it came once
    const last = [];
    for (const room of rooms) {
      last.push(await (await ownerOf(cluster, room)).call('XADD', room, '*', 'event', 'clc-end', 'data', '0'));
    }
    for (const id of last) {
      await nodeIn.waitFor((m) => m.messageId === id, 30000);
      await sioIn.waitFor((m) => m.messageId === id, 30000);
    }
    const entries = (inbox) => inbox.items.filter((m) => m.event === 'clc').map((m) => m.messageId).sort();
    assert.deepStrictEqual(entries(nodeIn), [...ids].sort());
    assert.deepStrictEqual(entries(sioIn), [...ids].sort());
    assert.deepStrictEqual(fromNode.items.filter((a) => !a.startsWith('end ')).sort(), [...rooms].sort());
    nodeIn.items.filter((m) => m.event === 'clc')
      .forEach((m) => assert.deepStrictEqual(m.message, { event: 'clc', data: { room: m.roomId } }));
    process.stdout.write(`# classic adapter on a 3-master cluster: ${rooms.length} entries published, ` +
      `${bus} PUBLISH messages over the cluster bus (${(bus / rooms.length).toFixed(1)} per publish)\n`);
    assert.ok(bus >= rooms.length * (cluster.nodes.length - 1), 'each PUBLISH went to every other node');
  }));
});

describe('streamio on a Redis Cluster through failovers under a steady producer', { timeout: 240000, skip: h.ANCHOR_SKIP }, () => {
  let cluster;
  let srv;

  before(async () => {
    ({ cluster, srv } = await startOnCluster({
      replicas: 1,
      // entries stay in the streams, so the test compares with what Redis holds at the end
      env: { STREAM_PATTERN: 'clf.*', STREAM_CLAIM_IDLE_MS: '2000', STREAM_DELETE_POLICY: 'retain' },
    }));
  });

  h.stopAfter(() => ({ srv, redis: cluster }));
  const logs = (fn) => h.withLogs(() => [srv], fn);
  const replicaOf = async (master) => {
    for (const n of cluster.nodes) {
      if (!n.handle.running) continue;
      const role = await n.call('ROLE');
      if (role[0] === 'slave' && Number(role[2]) === master.port) return n;
    }
    return null;
  };

  // Moves 1000 slots of `from` to `to`, the slots of `first` (the rooms' slots) first.
  const reshard = async (from, to, first) => {
    const owned = [];
    for (const r of await from.call('CLUSTER', 'SLOTS')) {
      if (Number(r[2][1]) !== from.port) continue;
      for (let x = Number(r[0]); x <= Number(r[1]); x++) owned.push(x);
    }
    const mine = new Set(owned);
    const moving = [...new Set(first.filter((x) => mine.has(x)))];
    for (const x of owned) {
      if (moving.length >= 1000) break;
      if (!moving.includes(x)) moving.push(x);
    }
    for (const x of moving) await cluster.moveSlot(x, to);
    return moving.length;
  };

  for (const kind of ['graceful CLUSTER FAILOVER', 'kill -9 of a master', 'reshard of 1000 slots']) {
    it(`${kind}: every entry Redis holds is delivered, in stream order per room`, logs(async () => {
      const s = await h.connectClient(srv.url);
      const inbox = h.collect(s);
      const rooms = [];
      for (let i = 0; i < 6; i++) rooms.push(h.uniq('clf.room'));
      for (const room of rooms) await h.joinRoom(s, room);
      const slots = new Map();
      for (const room of rooms) slots.set(room, await keyslot(cluster, room));
      let stop = false;
      let refused = 0;
      let accepted = 0;
      // a producer writing one entry every 10 ms round the rooms, to each slot's owner
      // (bounded: 4000 tries)
      const producer = (async () => {
        for (let i = 0; i < 4000 && !stop; i++) {
          const room = rooms[i % rooms.length];
          try {
            const owner = await cluster.slotOwner(slots.get(room));
            await owner.call('XADD', room, '*', 'event', 'tick', 'data', JSON.stringify({ i }));
            accepted += 1;
          } catch {
            refused += 1; // MOVED / CLUSTERDOWN / a killed node while the cluster settles
          }
          await h.sleep(10);
        }
      })();
      await inbox.waitCount(30, 30000);
      const victim = await cluster.slotOwner(slots.get(rooms[0]));
      if (kind.startsWith('reshard')) {
        const ports = (await cluster.masterPorts()).filter((p) => p !== victim.port);
        const to = cluster.byPort(ports[0]);
        const moved = await reshard(victim, to, [...slots.values()].map(Number));
        assert.equal(moved, 1000);
        assert.equal((await cluster.slotOwner(slots.get(rooms[0]))).port, to.port);
      }
      const replica = kind.startsWith('reshard') ? null : await replicaOf(victim);
      if (!kind.startsWith('reshard')) assert.ok(replica, `a replica of ${victim.port}`);
      if (kind.startsWith('reshard')) {
        // the slots moved with their streams and consumer groups
      } else if (kind.startsWith('graceful')) {
        await cluster.failover(replica);
      } else {
        victim.client.close();
        process.kill(victim.handle.pid, 'SIGKILL');
        await victim.handle.exited;
      }
      if (replica) {
        await h.waitUntil(async () => (await cluster.role(replica)) === 'master', { timeout: 60000, message: 'the replica promoted' });
      }
      await cluster.waitOk(60000);
      const settled = accepted;
      await h.waitUntil(() => accepted >= settled + 150, { timeout: 60000, message: 'writes after the failover' });
      stop = true;
      await producer;
      const held = new Map();
      for (const room of rooms) {
        const owner = await cluster.slotOwner(slots.get(room));
        held.set(room, (await owner.call('XRANGE', room, '-', '+')).map((e) => e[0]));
      }
      await h.waitUntil(() => {
        const got = new Set(inbox.items.map((m) => m.messageId));
        return [...held.values()].every((ids) => ids.every((id) => got.has(id)));
      }, { timeout: 60000, message: 'every entry Redis holds delivered' });
      let dups = 0;
      for (const room of rooms) {
        const seen = new Set();
        const firsts = [];
        for (const m of inbox.items.filter((x) => x.roomId === room)) {
          if (seen.has(m.messageId)) dups += 1;
          else firsts.push(m.messageId);
          seen.add(m.messageId);
        }
        const ids = new Set(held.get(room));
        assert.deepStrictEqual(firsts.filter((id) => ids.has(id)), held.get(room), `${room}: first deliveries in stream order`);
      }
      const total = [...held.values()].reduce((a, ids) => a + ids.length, 0);
      process.stdout.write(`# cluster ${kind}: ${accepted} accepted, ${refused} refused, ${total} held, ${dups} delivered twice\n`);
      assert.ok(dups <= 300, `duplicates bounded (${dups})`);
      // every connection is back once each client has dropped the dead node from its map
      await h.waitUntil(async () => (await h.healthRetry(srv)).body.redisConnected === true,
        { timeout: 30000, message: 'redisConnected again' });
    }));
  }
});
