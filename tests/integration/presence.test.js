'use strict';
// PRESENCE across two streamio servers on one Redis (adapter off, classic and sharded, client
// events on too, each stored once whatever the adapter): members
// of a PRESENCE_ROOMS room get presence:join / presence:leave {roomId, user} exactly once per
// user (two devices count as one), GET /presence/<room> (Bearer ADMIN_TOKEN) and `streamioctl
// presence` answer who is there with connection counts, PRESENCE_STREAM gets online/offline
// (read with python3-redis), and a crashed server's users are gone within about 4/3 of
// PRESENCE_TTL_MS. MAX_CONNECTIONS_PER_USER holds across both servers, also for a CONNECT that
// asks to recover a session.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { pyRedisOk, py, ctl, get, metrics, series, sign } = require('./lib/backend');

const TOKEN = 'admin-token-0123456789abcdef';
const SECRET = 'presence-secret-0123456789abcdef-0123456789';
const TTL = 3000;
const skip = h.ANCHOR_SKIP || (!pyRedisOk && 'python3-redis missing');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-presence-'));
const now = () => Math.floor(Date.now() / 1000);

function presenceEnv(extra = {}) {
  return {
    PRESENCE: 'true',
    PRESENCE_ROOMS: 'chat.*',
    PRESENCE_STREAM: 'streamio:presence',
    PRESENCE_TTL_MS: String(TTL),
    ADMIN_TOKEN: TOKEN,
    ...extra,
  };
}

// A client with user id `user` (auth off: the handshake's auth.user_id), its presence events.
async function member(srv, user) {
  const s = await h.connectClient(srv.url, { auth: { user_id: user } });
  const events = [];
  s.on('presence:join', (e) => events.push(['join', e]));
  s.on('presence:leave', (e) => events.push(['leave', e]));
  return { s, events };
}

async function presenceOf(srv, room) {
  const r = await get(`${srv.url}/presence/${encodeURIComponent(room)}`, { Authorization: `Bearer ${TOKEN}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

// Stops a server the hard way: master frozen (no respawn), workers and master SIGKILLed.
async function crash(srv) {
  const pids = (await h.healthRetry(srv)).body.workers.map((w) => w.pid);
  process.kill(srv.pid, 'SIGSTOP');
  for (const pid of pids) h.killWorker(srv, pid);
  process.kill(srv.pid, 'SIGKILL');
  await h.waitExit(srv.handle, 5000);
}

for (const adapter of ['false', 'true', 'sharded']) {
  describe(`presence across two servers (SOCKETIO_REDIS_ADAPTER=${adapter})`, { timeout: 90000, skip }, () => {
    let redis;
    let a;
    let b;
    const sock = path.join(tmp, `control-${adapter}.sock`);

    before(async () => {
      redis = await h.startRedis();
      const both = { SOCKETIO_REDIS_ADAPTER: adapter, SOCKETIO_INBOUND_STREAM: 'streamio:inbound' };
      a = await h.startStreamio(presenceEnv({ ...both, STREAMIO_CONTROL_SOCKET: sock }), { redis });
      b = await h.startStreamio(presenceEnv({ ...both, CLUSTER_WORKERS: '2' }), { redis });
    });

    const logs = h.stopAfter(() => ({ srv: [a, b], redis }));

    it('tells a room\'s members of each user\'s first join and last leave, once', logs(async () => {
      const room = h.uniq('chat.room');
      const carol = await member(a, 'carol');
      await h.joinRoom(carol.s, room);
      await h.waitUntil(() => carol.events.length === 1, { message: 'carol told of herself' });
      const alice1 = await member(a, 'alice');
      const alice2 = await member(b, 'alice');
      const bob = await member(b, 'bob');
      await h.joinRoom(alice1.s, room);
      await h.waitUntil(() => carol.events.length === 2, { message: 'alice joined' });
      await h.joinRoom(alice2.s, room); /* her second device: no event */
      await h.joinRoom(bob.s, room);
      await h.waitUntil(() => carol.events.length === 3, { message: 'bob joined' });
      // who is there, from either server, and from streamioctl
      const want = {
        roomId: room,
        users: [{ user: 'alice', connections: 2 }, { user: 'bob', connections: 1 },
          { user: 'carol', connections: 1 }],
        userCount: 3,
        connectionCount: 4,
      };
      assert.deepEqual(await presenceOf(b, room), want);
      assert.deepEqual(await presenceOf(a, room), want);
      const c = await ctl(sock, 'presence', room);
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(JSON.parse(c.stdout), want);
      // alice's first device leaves, then her second: one leave
      alice1.s.close();
      await h.waitUntil(async () => (await presenceOf(a, room)).connectionCount === 3, { message: 'alice1 gone' });
      assert.equal(carol.events.length, 3);
      assert.deepEqual(await h.emitAck(alice2.s, 'leave-room', room), { ok: true, roomId: room });
      await h.waitUntil(() => carol.events.length === 4, { message: 'alice left' });
      assert.deepEqual(carol.events, [
        ['join', { roomId: room, user: 'carol' }],
        ['join', { roomId: room, user: 'alice' }],
        ['join', { roomId: room, user: 'bob' }],
        ['leave', { roomId: room, user: 'alice' }],
      ]);
      assert.deepEqual(bob.events, [['join', { roomId: room, user: 'bob' }], ['leave', { roomId: room, user: 'alice' }]]);
      // a room outside PRESENCE_ROOMS is counted, never announced
      const quiet = h.uniq('news.room');
      await h.joinRoom(bob.s, quiet);
      await h.joinRoom(carol.s, quiet);
      assert.equal((await presenceOf(a, quiet)).userCount, 2);
      assert.equal(carol.events.length, 4);
      // online / offline for the back end
      alice2.s.close();
      const entries = await h.waitUntil(async () => {
        const e = (await py(redis.port, 'range', 'streamio:presence')).map(([, f]) => f);
        return e.some((f) => f.user === 'alice' && f.state === 'offline') ? e : null;
      }, { message: 'alice offline' });
      for (const f of entries) assert.deepEqual(Object.keys(f), ['user', 'state', 'ts']);
      assert.deepEqual(entries.filter((f) => f.user === 'alice').map((f) => f.state), ['online', 'offline']);
      assert.deepEqual(entries.filter((f) => f.user === 'bob').map((f) => f.state), ['online']);
      const m = await metrics(b.url);
      assert.equal(series(m, 'streamio_presence_users'), 1); /* bob, on b */
      h.closeAllClients();
    }));

    it('stores each client event once, from either server', logs(async () => {
      const x = await h.connectClient(a.url);
      const y = await h.connectClient(b.url);
      const ackX = await h.emitAck(x, 'chat.send', { text: 'from a' });
      const ackY = await h.emitAck(y, 'typing', 'chat.room');
      assert.equal(ackX.ok, true);
      assert.equal(ackY.ok, true);
      const got = await py(redis.port, 'range', 'streamio:inbound');
      assert.deepEqual(got.map(([id, f]) => [id, f.event, f.data, f.sid]), [
        [ackX.id, 'chat.send', '[{"text":"from a"}]', x.id],
        [ackY.id, 'typing', '["chat.room"]', y.id],
      ]);
      for (const [, f] of got) assert.deepEqual(Object.keys(f), ['event', 'data', 'sid', 'server', 'ts']);
      h.closeAllClients();
    }));

    it('answers 401 and 403 without the admin token', logs(async () => {
      const none = await get(`${a.url}/presence/chat.x`);
      assert.equal(none.status, 401);
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="streamio"');
      assert.deepEqual(none.body, { message: 'Authorization: Bearer <ADMIN_TOKEN> required' });
      const wrong = await get(`${a.url}/presence/chat.x`, { Authorization: 'Bearer nope' });
      assert.equal(wrong.status, 403);
      assert.deepEqual(wrong.body, { message: 'Invalid admin token' });
      const empty = await presenceOf(a, 'chat.empty/é');
      assert.deepEqual(empty, { roomId: 'chat.empty/é', users: [], userCount: 0, connectionCount: 0 });
    }));
  });
}

describe('a crashed server\'s users expire from presence', { timeout: 90000, skip }, () => {
  let redis;
  let a;
  let c;

  before(async () => {
    redis = await h.startRedis();
    a = await h.startStreamio(presenceEnv(), { redis });
    c = await h.startStreamio(presenceEnv({ CLUSTER_WORKERS: '2' }), { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (a) await a.stop();
    if (c) await c.stop();
    if (redis) await redis.stop();
  });

  it('leaves the rooms and goes offline within PRESENCE_TTL_MS * 4/3', h.withLogs(() => [a, c], async () => {
    const room = h.uniq('chat.crash');
    const carol = await member(a, 'carol');
    await h.joinRoom(carol.s, room);
    const dave = await member(c, 'dave');
    await h.joinRoom(dave.s, room);
    await h.waitUntil(() => carol.events.length === 2, { message: 'dave joined' });
    assert.equal((await presenceOf(a, room)).userCount, 2);
    await crash(c);
    const t0 = Date.now();
    // answers leave a silent server out as soon as its heartbeat is older than the TTL
    await h.waitUntil(async () => (await presenceOf(a, room)).userCount === 1, { timeout: 2 * TTL, message: 'dave left out' });
    await h.waitUntil(() => carol.events.length === 3, { timeout: 2 * TTL, message: 'presence:leave dave' });
    const took = Date.now() - t0;
    assert.ok(took < TTL * 4 / 3 + 1500, `took ${took} ms`);
    assert.deepEqual(carol.events[2], ['leave', { roomId: room, user: 'dave' }]);
    const e = await h.waitUntil(async () => {
      const all = (await py(redis.port, 'range', 'streamio:presence')).map(([, f]) => f);
      return all.some((f) => f.user === 'dave' && f.state === 'offline') ? all : null;
    }, { message: 'dave offline' });
    assert.deepEqual(e.filter((f) => f.user === 'dave').map((f) => f.state), ['online', 'offline']);
    // nothing of the dead server is left in Redis
    const keys = await redis.call('KEYS', '*dave*');
    assert.deepEqual(keys, []);
    const m = await metrics(a.url);
    assert.equal(series(m, 'streamio_presence_expired_total'), 1);
    h.closeAllClients();
  }));
});

describe('MAX_CONNECTIONS_PER_USER across two servers', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let a;
  let b;

  before(async () => {
    redis = await h.startRedis();
    const env = {
      AUTH_JWT_SECRET: SECRET,
      MAX_CONNECTIONS_PER_USER: '3',
      SOCKETIO_REDIS_ADAPTER: 'true',
      CONNECTION_RECOVERY: 'true', /* a CONNECT asking to recover is limited as well */
      STREAM_DELETE_POLICY: 'retain',
    };
    a = await h.startStreamio(env, { redis });
    b = await h.startStreamio({ ...env, CLUSTER_WORKERS: '2' }, { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (a) await a.stop();
    if (b) await b.stop();
    if (redis) await redis.stop();
  });

  it('refuses the connection over the limit with CONNECT_ERROR, counted', h.withLogs(() => [a, b], async () => {
    const token = sign({ exp: now() + 600, sub: 'erin' }, SECRET);
    const other = sign({ exp: now() + 600, sub: 'frank' }, SECRET);
    const s1 = await h.connectClient(a.url, { auth: { token } });
    const s2 = await h.connectClient(b.url, { auth: { token } });
    const s3 = await h.connectClient(b.url, { auth: { token } });
    const refused = await h.connectClient(a.url, { auth: { token } }).then(() => null, (e) => e);
    assert.ok(refused, 'a fourth connection of erin was let in');
    assert.match(refused.message, /failed: Too many connections for this user$/);
    // asking to recover a session (a well-formed pid of no session) does not pass the limit
    const forged = await h.connectClient(b.url, { auth: { token, pid: 'A'.repeat(20), offset: '1-0' } })
      .then(() => null, (e) => e);
    assert.ok(forged, 'a recovering CONNECT of erin was let in');
    assert.match(forged.message, /failed: Too many connections for this user$/);
    await h.connectClient(a.url, { auth: { token: other } }); /* someone else is not limited */
    const m = await metrics(a.url);
    assert.equal(series(m, 'streamio_limit_rejections_total{limit="per_user"}'), 1);
    assert.equal(series(await metrics(b.url), 'streamio_limit_rejections_total{limit="per_user"}'), 1);
    // a connection that goes frees its place, on any server
    h.closeClient(s2);
    const s4 = await h.waitUntil(() => h.connectClient(a.url, { auth: { token } }).catch(() => null),
      { message: 'a place for erin again' });
    assert.ok(s4.connected && s1.connected && s3.connected);
    h.closeAllClients();
  }));
});
