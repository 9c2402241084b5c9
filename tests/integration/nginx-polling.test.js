'use strict';
// Seed 003 behind nginx without sticky sessions (issue 14): Debian's nginx, started here on a
// loopback port with a plain round-robin upstream of three streamio servers (2 workers each,
// on the streams adapter, then on the classic one). Every long-polling request lands on any server; the one that does not own
// the session forwards it to the one that does. Polling-only clients and clients that upgrade to
// WebSocket get every entry exactly once, in order, and keep their session throughout.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { io } = require('socket.io-client');
const h = require('./lib/harness');
const ngx = require('./lib/nginx');

const SERVERS = 3;

for (const adapter of ['streams', 'true']) describe(`three streamio servers behind a round-robin nginx, no sticky sessions (SOCKETIO_REDIS_ADAPTER=${adapter})`, {
  timeout: 120000,
  skip: h.ANCHOR_SKIP || (!ngx.available() && 'nginx is not installed (apt-get install nginx)'),
}, () => {
  let redis;
  let nginx;
  const servers = [];
  const sockets = [];

  before(async () => {
    redis = await h.startRedis();
    for (let i = 0; i < SERVERS; i++) {
      servers.push(await h.startStreamio({
        CLUSTER_WORKERS: '2',
        SOCKETIO_REDIS_ADAPTER: adapter,
        STREAM_PATTERN: 'lb.*',
      }, { redis }));
    }
    nginx = await ngx.startNginx(servers.map((s) => s.port));
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (nginx) await nginx.stop();
    for (const s of servers) await s.stop();
    if (redis) await redis.stop();
  });

  const logs = (fn) => h.withLogs(() => [...servers, nginx], fn);

  // A client of nginx's URL; resolves once connected. Records its disconnects.
  function connect(transports) {
    const s = io(nginx.url, { transports, forceNew: true, reconnection: false, timeout: 10000 });
    sockets.push(s);
    s.drops = [];
    s.on('disconnect', (why) => s.drops.push(why));
    return new Promise((resolve, reject) => {
      s.once('connect', () => resolve(s));
      s.once('connect_error', (err) => reject(new Error(`connect through nginx: ${err.message}`)));
    });
  }

  it(`polling clients and upgrading clients get every entry once${adapter === 'streams' ? ', in the same order,' : ''} on one session`, logs(async () => {
    const room = h.uniq('lb.room');
    const polling = await Promise.all(Array.from({ length: 6 }, () => connect(['polling'])));
    const upgrading = await Promise.all(Array.from({ length: 3 }, () => connect(['polling', 'websocket'])));
    const all = [...polling, ...upgrading];
    const sids = all.map((s) => s.id);
    for (const s of all) await h.joinRoom(s, room);
    const inboxes = all.map((s) => h.collect(s));
    const ids = [];
    for (let j = 0; j < 20; j++) {
      ids.push(await redis.call('XADD', room, '*', 'event', 'lb', 'data', JSON.stringify({ j })));
      if (j % 5 === 4) await h.sleep(200); /* long polls complete and new ones start meanwhile */
    }
    // a last entry, to wait for
    ids.push(await redis.call('XADD', room, '*', 'event', 'lb', 'data', JSON.stringify({ last: true })));
    await h.waitUntil(() => inboxes.every((b) => ids.every((id) => b.items.some((m) => m.messageId === id))),
      { timeout: 30000, message: 'every entry on every client' });
    // the servers share the room's consumer group, so two entries read at once by two servers
    // may cross; with streams every server delivers in the adapter stream's order, the same for all
    let order = null;
    if (adapter === 'streams') {
      const appended = await redis.call('XRANGE', 'socket.io', '-', '+');
      order = appended.map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]).packet.data[1].messageId)
        .filter((id) => ids.includes(id));
    }
    inboxes.forEach((b, i) => {
      const got = b.items.map((m) => m.messageId);
      assert.deepStrictEqual([...got].sort(), [...ids].sort(), `client ${i}: every entry once`);
      if (order) assert.deepStrictEqual(got, order, `client ${i}: in the adapter stream's order`);
    });
    all.forEach((s, i) => {
      assert.equal(s.id, sids[i], `client ${i} kept its session`);
      assert.deepStrictEqual(s.drops, [], `client ${i} never dropped`);
      assert.ok(s.connected);
    });
    for (const s of polling) assert.equal(s.io.engine.transport.name, 'polling');
    await h.waitUntil(() => upgrading.every((s) => s.io.engine.transport.name === 'websocket'),
      { timeout: 10000, message: 'the upgrades through nginx' });
    // the sessions live on all three servers: requests did cross servers
    const counts = await Promise.all(servers.map(async (srv) => (await h.healthRetry(srv)).body.connectedClients));
    assert.equal(counts.reduce((a, b) => a + b, 0), all.length);
    assert.ok(counts.filter((n) => n > 0).length >= 2, `sessions on several servers: ${counts}`);
  }));

  it('a client sending events over polling through nginx is answered on its own session', logs(async () => {
    const s = await connect(['polling']);
    for (let i = 0; i < 10; i++) {
      const ack = await h.emitAck(s, 'join-room', h.uniq('lb.ack'));
      assert.equal(ack.ok, true);
    }
    assert.deepStrictEqual(s.drops, []);
  }));
});

describe('a request for another server\'s session that cannot be relayed', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ SOCKETIO_REDIS_ADAPTER: 'true' }, { redis });
  });
  const logs = h.stopAfter(() => ({ srv, redis }));

  // a sid as a server tagged `tag` makes them: worker 0, the tag, random characters
  const sidOf = (tag) => `AA${tag}${'x'.repeat(14)}`;
  async function poll(sid) {
    const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
      { signal: AbortSignal.timeout(10000) });
    return { status: res.status, body: await res.json() };
  }
  const unknown = { code: 1, message: 'Session ID unknown' };

  it('is answered as an unknown session when no server has that tag', logs(async () => {
    assert.deepStrictEqual(await poll(sidOf('QQQQ')), { status: 400, body: unknown });
  }));

  it('carries nothing of the client to an address in Redis that is not that server', logs(async () => {
    // whoever can write Redis could aim relays at any service: one that answers anything
    const seen = [];
    const svc = net.createServer((sock) => {
      sock.on('data', (d) => {
        seen.push(d);
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret');
      });
      sock.on('error', () => {});
    });
    await new Promise((resolve) => svc.listen(0, '127.0.0.1', resolve));
    try {
      await redis.call('SET', 'socket.io:server:EVIL', `127.0.0.1:${svc.address().port}`, 'PX', '60000');
      assert.deepStrictEqual(await poll(sidOf('EVIL')), { status: 400, body: unknown });
      const got = Buffer.concat(seen).toString('latin1');
      assert.match(got, /^STREAMIO-RELAY EVIL [A-Za-z0-9_-]{16}\r\n$/);
    } finally {
      svc.close();
    }
  }));

  it('is answered, not relayed round in a loop, when the address announced for it is this server\'s', logs(async () => {
    await redis.call('SET', 'socket.io:server:LOOP', `127.0.0.1:${srv.port}`, 'PX', '60000');
    assert.deepStrictEqual(await poll(sidOf('LOOP')), { status: 400, body: unknown });
    // the server still serves
    assert.equal((await h.healthRetry(srv)).body.status, 'healthy');
  }));
});
