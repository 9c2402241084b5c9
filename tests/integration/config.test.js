'use strict';
// Configuration errors (exit status 2, one stderr line naming variable and value) and SIGTERM.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const BAD = [
  ['PORT', 'abc'],
  ['PORT', '70000'],
  ['CLUSTER_WORKERS', '0'],
  ['CLUSTER_WORKERS', 'two'],
  ['SOCKETIO_REDIS_ADAPTER', 'maybe'],
  ['LOG_LEVEL', 'loud'],
  ['REDIS_PORT', 'redis'],
  ['MAX_ROOMS_PER_SOCKET', 'lots'],
  ['DISCOVERY_INTERVAL', 'soon'],
  ['SOCKETIO_NAMESPACES', '/ok,admin'],
  ['SOCKETIO_NAMESPACES', '/ok,,/b'],
  ['SOCKETIO_TRANSPORTS', 'polling,carrier-pigeon'],
  ['SOCKETIO_TRANSPORTS', 'websocket,'],
  ['SOCKETIO_CORS_ORIGINS', 'https://app.example.com/'],
  ['SOCKETIO_CORS_ORIGINS', 'https://a.example.com, https://b.example.com'],
  ['SOCKETIO_CORS_ORIGINS', 'app.example.com'],
  ['HTTP_HEADER_TIMEOUT_MS', '5'],
  ['HTTP_BODY_TIMEOUT_MS', 'slow'],
  ['HTTP_KEEPALIVE_TIMEOUT_MS', '0'],
];

describe('bad configuration', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let okPort;
  let redisPort;

  before(async () => {
    okPort = String(await h.freePort());
    redisPort = String(await h.freePort()); // nothing listens there: startup must fail before Redis
  });

  for (const [name, value] of BAD) {
    it(`${name}=${JSON.stringify(value)} exits 2 and names the variable and the value`, async () => {
      const env = {
        REDIS_HOST: h.HOST,
        REDIS_PORT: redisPort,
        HOST: h.HOST,
        PORT: okPort,
        CLUSTER_WORKERS: '1',
        LOG_LEVEL: 'info',
        [name]: value,
      };
      const p = h.spawnStreamio(env, { name: `streamio ${name}=${value}` });
      try {
        const res = await h.waitExit(p, 5000);
        assert.ok(res, `exited within 5 s\n${p.describe()}`);
        await p.closed;
        assert.equal(res.code, 2, `exit status 2 (got code=${res.code} signal=${res.signal})\n${p.describe()}`);
        const lines = p.stderr().split('\n');
        assert.ok(lines.some((l) => l.includes(name) && l.includes(value)),
          `one stderr line names ${name} and ${JSON.stringify(value)}; stderr was:\n${p.stderr()}`);
      } finally {
        await h.stop(p, 3000);
      }
    });
  }
});

describe('logging', { timeout: 30000, skip: h.ANCHOR_SKIP }, () => {
  it('logs to stderr (LOG_LEVEL=info) and writes nothing to stdout', async () => {
    let redis;
    let srv;
    try {
      redis = await h.startRedis();
      srv = await h.startStreamio({ CLUSTER_WORKERS: '2', LOG_LEVEL: 'info' }, { redis });
      const s = await h.connectClient(srv.url);
      await h.joinRoom(s, h.uniq('log.room'));
      h.closeClient(s);
      assert.equal(await srv.stop(), 0);
      await srv.handle.closed;
      assert.notEqual(srv.handle.stderr().trim(), '', `some log lines on stderr\n${srv.describe()}`);
      assert.equal(srv.handle.stdout(), '', `stdout stays empty\n${srv.describe()}`);
    } finally {
      if (srv) await srv.stop();
      if (redis) await redis.stop();
    }
  });
});

describe('SIGTERM', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
  });

  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  for (const workers of ['1', '2']) {
    it(`stops with exit status 0 within 10 s (CLUSTER_WORKERS=${workers}, clients connected)`, h.withLogs(() => srv,
      async () => {
        if (srv) await srv.stop();
        srv = await h.startStreamio({ CLUSTER_WORKERS: workers, DISCOVERY_INTERVAL: '500' }, { redis });
        const clients = await h.connectClients(srv.url, 4);
        const room = h.uniq('term.room');
        await Promise.all(clients.map((s) => h.joinRoom(s, room)));
        const inbox = h.collect(clients[0]);
        const id = await redis.call('XADD', room, '*', 'event', 'x');
        await inbox.waitFor((m) => m.messageId === id, 10000);
        let workerPids = [];
        if (!h.ANCHOR_MODE) {
          const { body } = await h.waitUntil(async () => {
            const r = await h.healthRetry(srv);
            return Array.isArray(r.body.workers) && r.body.workers.length === Number(workers) ? r : null;
          }, { timeout: 5000, message: `${workers} entries in /health workers[]` });
          workerPids = body.workers.map((w) => w.pid);
        }
        const disconnected = Promise.all(clients.map((s) => new Promise((resolve) => {
          if (!s.connected) resolve();
          else s.once('disconnect', resolve);
        })));

        process.kill(srv.pid, 'SIGTERM');
        const res = await h.waitExit(srv.handle, 10000);
        assert.ok(res, `exited within 10 s of SIGTERM`);
        assert.equal(res.code, 0, `exit status 0 (got code=${res.code} signal=${res.signal})`);
        await h.withDeadline(disconnected, 3000, 'clients see the disconnect');
        for (const pid of workerPids) {
          await h.waitUntil(() => !h.processAlive(pid), { timeout: 2000, message: `worker ${pid} gone` });
        }
        await srv.stop();
        srv = null;
      }));
  }
});
