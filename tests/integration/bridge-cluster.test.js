'use strict';
// Client events, presence and the per-user limit on a 6-node Redis Cluster (REDIS_CLUSTER_NODES):
// their keys spread over the slots and every script stays in one slot (hash tags), so two
// servers see each other's users; a back end reads the inbound stream with python3-redis'
// RedisCluster; `streamioctl presence` and `dead-letter list` follow the slots too.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { startCluster } = require('./lib/redis-topologies');
const { pyRedisOk, py, ctl, get, sign } = require('./lib/backend');

const TOKEN = 'admin-token-0123456789abcdef';
const SECRET = 'cluster-secret-0123456789abcdef-0123456789';
const now = () => Math.floor(Date.now() / 1000);
const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-bridge-cluster-')), 'control.sock');

describe('client events, presence and per-user limits on Redis Cluster', { timeout: 120000, skip: h.ANCHOR_SKIP || (!pyRedisOk && 'python3-redis missing') }, () => {
  let cluster;
  let a;
  let b;

  before(async () => {
    cluster = await startCluster();
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_PORT: String(cluster.nodes[0].port),
      AUTH_JWT_SECRET: SECRET,
      SOCKETIO_INBOUND_STREAM: 'streamio:inbound',
      PRESENCE: 'true',
      PRESENCE_ROOMS: 'chat.*',
      PRESENCE_TTL_MS: '3000',
      MAX_CONNECTIONS_PER_USER: '2',
      ADMIN_TOKEN: TOKEN,
      STREAM_DEAD_LETTER: 'streamio:dead',
    };
    a = await h.startStreamio({ ...env, STREAMIO_CONTROL_SOCKET: sock });
    b = await h.startStreamio({ ...env, CLUSTER_WORKERS: '2' });
  });

  after(async () => {
    h.closeAllClients();
    if (a) await a.stop();
    if (b) await b.stop();
    if (cluster) await cluster.stop();
  });

  it('works across two servers with keys in many slots', h.withLogs(() => [a, b], async () => {
    const tok = (sub) => sign({ exp: now() + 600, sub, rooms: ['*'] }, SECRET);
    const rooms = ['chat.a', 'chat.b', 'chat.c', 'chat.d'];
    const watcher = await h.connectClient(a.url, { auth: { token: tok('watcher') } });
    const joins = [];
    watcher.on('presence:join', (e) => joins.push(e));
    for (const r of rooms) await h.joinRoom(watcher, r);
    const users = ['u1', 'u2', 'u3'];
    const socks = [];
    for (const [i, u] of users.entries()) {
      const s = await h.connectClient((i % 2 ? a : b).url, { auth: { token: tok(u) } });
      socks.push(s);
      for (const r of rooms) await h.joinRoom(s, r);
    }
    await h.waitUntil(() => joins.length === rooms.length * 4, { message: 'every join told' });
    // the keys of the rooms and users live on every master
    const slots = new Set();
    for (const r of rooms) slots.add(await cluster.slotOwner(await cluster.nodes[0].call('CLUSTER', 'KEYSLOT', `{${r}}`)));
    assert.ok(slots.size >= 2, 'rooms on one master only');
    for (const r of rooms) {
      const p = await get(`${b.url}/presence/${r}`, { Authorization: `Bearer ${TOKEN}` });
      assert.equal(p.status, 200);
      assert.deepEqual(p.body.users.map((x) => x.user), ['u1', 'u2', 'u3', 'watcher']);
      // the master's streamioctl reaches the slot's owner too
      const c = await ctl(sock, 'presence', r);
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(JSON.parse(c.stdout), p.body);
    }
    const dl = await ctl(sock, 'dead-letter', 'list');
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual(JSON.parse(dl.stdout), { stream: 'streamio:dead', entries: [] });
    // the per-user limit counts both servers
    await h.connectClient(a.url, { auth: { token: tok('u1') } });
    const refused = await h.connectClient(b.url, { auth: { token: tok('u1') } }).then(() => null, (e) => e);
    assert.match(refused && refused.message, /Too many connections for this user/);
    // client events, read by a RedisCluster back end
    const ack = await h.emitAck(socks[0], 'chat.send', { text: 'over the cluster' });
    assert.equal(ack.ok, true);
    const got = await py(`cluster:127.0.0.1:${cluster.nodes[0].port}`, 'consume', 'streamio:inbound', 'g', 'c', '1', '10000');
    assert.equal(got[0][0], ack.id);
    assert.equal(got[0][1].user, 'u1');
    assert.equal(got[0][1].data, '[{"text":"over the cluster"}]');
    h.closeAllClients();
  }));
});
