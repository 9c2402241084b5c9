'use strict';
// REDIS_USERNAME + REDIS_PASSWORD: every Redis connection (master discovery, worker readers and
// service link, adapter publisher and subscriber) authenticates as a Redis 6+ ACL user, with the
// default user disabled; a wrong password gives one clear log line per connection, no crash and
// no log flood while it keeps retrying.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const USER = 'streamio-acl';
const PASS = 'acl-pass-9f2c1e';

describe('Redis ACL user', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;

  before(async () => {
    redis = await h.startRedis();
    // what streamio needs: streams, keys, pub/sub (adapter), CLIENT ID/UNBLOCK (lane wake-ups)
    assert.equal(await redis.call('ACL', 'SETUSER', USER, 'on', `>${PASS}`, '~*', '&*',
      '+@all', '-@dangerous', '+client|id', '+client|unblock', '+info'), 'OK');
    assert.equal(await redis.call('ACL', 'SETUSER', 'test-admin', 'on', '>admin-pass', '~*', '&*', '+@all'), 'OK');
    assert.equal(await redis.call('ACL', 'SETUSER', 'default', 'off'), 'OK');
    assert.equal(await redis.call('AUTH', 'test-admin', 'admin-pass'), 'OK'); // the test's own link
    // the default user is really refused now
    const probe = await h.RedisClient.connect(redis.port);
    await assert.rejects(probe.call('PING'), /NOAUTH/);
    probe.close();
  });

  after(async () => {
    h.closeAllClients();
    if (redis) await redis.stop();
  });

  it('delivers with the ACL user on every connection (2 workers, adapter on)', async () => {
    const srv = await h.startStreamio({
      CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'true', REDIS_USERNAME: USER, REDIS_PASSWORD: PASS,
    }, { redis });
    try {
      await h.waitUntil(async () => (await h.healthRetry(srv)).body.redisConnected === true,
        { timeout: 10000, message: 'redisConnected' });
      const room = h.uniq('acl.room');
      const clients = await h.connectClients(srv.url, 4);
      const inboxes = clients.map((c) => h.collect(c));
      for (const c of clients) await h.joinRoom(c, room);
      const id = await redis.call('XADD', room, '*', 'event', 'acl', 'n', '1');
      for (const inbox of inboxes) {
        const [m] = await inbox.waitCount(1, 10000);
        assert.equal(m.messageId, id);
        assert.equal(m.roomId, room);
      }
      const list = await redis.call('CLIENT', 'LIST');
      const users = list.split('\n').filter(Boolean).map((l) => / user=(\S+)/.exec(l)[1])
        .filter((u) => u !== 'test-admin');
      assert.deepStrictEqual([...new Set(users)], [USER], 'every connection runs as the ACL user');
      assert.ok(users.length >= 7, `discovery + 2 workers x (reader, service, adapter pub/sub): ${users.length}`);
      const out = srv.handle.output();
      assert.ok(!/NOAUTH|NOPERM|WRONGPASS|AUTH refused/.test(out), out);
      for (const c of clients) h.closeClient(c);
    } finally {
      await srv.stop();
    }
  });

  it('logs a wrong password once per connection and keeps retrying quietly, workers alive', async () => {
    const srv = await h.startStreamio({
      CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'true', REDIS_USERNAME: USER, REDIS_PASSWORD: 'wrong',
      REDIS_DB: '1', // SELECT after a refused AUTH must not log on every retry either
    }, { redis });
    try {
      const pids = (await h.healthRetry(srv)).body.workers.map((w) => w.pid).sort();
      assert.equal(pids.length, 2);
      await h.waitUntil(() => /AUTH refused: WRONGPASS/.test(srv.handle.output()),
        { timeout: 10000, message: 'the AUTH refusal is logged' });
      const count = () => (srv.handle.output().match(/AUTH.*WRONGPASS|WRONGPASS.*AUTH/g) || []).length;
      // the refused AUTHs Redis saw (ACL LOG groups repeats of one user into counted entries)
      const attempts = async () => (await redis.call('ACL', 'LOG', '128')).reduce((n, e) => {
        const f = {};
        for (let i = 0; i + 1 < e.length; i += 2) f[e[i]] = e[i + 1];
        return f.reason === 'auth' ? n + Number(f.count) : n;
      }, 0);
      // every connection has been refused (and said so) once the attempts are twice the lines
      const settled = await h.waitUntil(async () => {
        const lines = count();
        const n = await attempts();
        return n >= 2 * lines ? { lines, n } : null;
      }, { timeout: 20000, interval: 100, message: 'every connection refused once' });
      const first = settled.lines;
      await h.waitUntil(async () => (await attempts()) >= settled.n + 2 * first, {
        timeout: 30000, interval: 200, message: 'two more retries per connection (backoff 100 ms .. 5 s)',
      });
      assert.equal(count(), first, `no new AUTH lines while retrying:\n${srv.handle.output()}`);
      assert.ok(!/NOAUTH/.test(srv.handle.output()), 'no NOAUTH errors logged');
      assert.ok(first <= 20, `one line per connection, got ${first}`);
      assert.match(srv.handle.output(), /check REDIS_USERNAME and REDIS_PASSWORD/);
      const body = (await h.healthRetry(srv)).body;
      assert.equal(body.redisConnected, false);
      assert.deepStrictEqual(body.workers.map((w) => w.pid).sort(), pids, 'no worker restarted');
      assert.ok(srv.handle.running);
    } finally {
      await srv.stop();
    }
  });
});
