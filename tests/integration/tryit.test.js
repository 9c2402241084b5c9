'use strict';
// The README's try-it path, as a new user walks it: `make run`'s script (prints the /debug page
// and the watch command, serves /debug), `streamioctl watch` (a Socket.IO client that prints each
// room:message as one JSON line, reconnects, says why it was refused), the /debug console in a
// headless Chromium (screenshot + DOM), and the warning that names SOCKETIO_CORS_ORIGINS when a
// browser page of another origin is kept out.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const { CHROMIUM, openPage } = require('./lib/chromium');
const { wsOpen } = require('./lib/rawnet');

const root = path.resolve(__dirname, '../..');
const ctlBin = () => path.join(path.dirname(process.env.STREAMIO_BIN || ''), 'streamioctl');
const ARTIFACTS = path.join(root, 'build', 'test-artifacts');

// streamioctl watch ...; resolves the handle (output captured).
function watch(args) {
  return h.spawnTracked(ctlBin(), ['watch', ...args], { name: 'streamioctl-watch' });
}

const lines = (s) => s.split('\n').filter(Boolean);

// Adds an entry to `room` every 300 ms until `done()` holds (the stream is discovered meanwhile);
// returns the ids added.
async function feedUntil(redis, room, done, label, fields = ['event', 'try.it', 'data', '{"n":1}']) {
  const ids = [];
  await h.waitUntil(async () => {
    ids.push(await redis.call('XADD', room, '*', ...fields));
    return done();
  }, { timeout: 15000, interval: 300, message: label });
  return ids;
}

describe('streamioctl watch', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let port;

  before(async () => {
    redis = await h.startRedis();
    port = await h.freePort();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '200', PORT: String(port) },
      { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('prints each room:message of every room as one JSON line and stops after --count', logs(async () => {
    const a = h.uniq('watch.a');
    const b = h.uniq('watch.b');
    const w = watch([a, b, '--url', srv.url, '--count', '2']);
    try {
      await h.waitUntil(() => (w.stderr().match(/joined /g) || []).length === 2 || !w.running,
        { timeout: 10000, message: 'watch joined both rooms' });
      assert.equal(w.stderr(), `streamioctl: joined ${a}\nstreamioctl: joined ${b}\n`);
      const idA = await redis.call('XADD', a, '*', 'event', 'user.message', 'data', '{"user_id":123,"message":"Hello"}');
      await h.waitUntil(() => w.stdout().length > 0, { timeout: 10000, message: 'the first line' });
      const idB = await redis.call('XADD', b, '*', 'event', 'note', 'data', 'not "json"');
      const exit = await h.waitExit(w, 10000);
      assert.deepEqual(exit, { code: 0, signal: null }, w.describe());
      const out = lines(w.stdout());
      assert.equal(out.length, 2);
      assert.equal(out[0], JSON.stringify({ from: 'service', message: { event: 'user.message',
        data: { user_id: 123, message: 'Hello' } }, roomId: a, event: 'user.message', messageId: idA }));
      assert.deepEqual(JSON.parse(out[1]), { from: 'service', message: { event: 'note', data: 'not "json"' },
        roomId: b, event: 'note', messageId: idB });
    } finally {
      await h.stop(w);
    }
  }));

  it('reconnects and joins again when the server restarts, and misses no later entry', logs(async () => {
    const room = h.uniq('watch.restart');
    const w = watch([room, '--url', srv.url, '--count', '1']);
    try {
      await h.waitUntil(() => w.stderr().includes(`joined ${room}`), { timeout: 10000, message: 'joined' });
      assert.equal(await srv.stop(), 0);
      await h.waitUntil(() => w.stderr().includes('reconnecting in'), { timeout: 10000, message: 'reconnecting' });
      srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '200', PORT: String(port) },
        { redis });
      await h.waitUntil(() => (w.stderr().match(/joined /g) || []).length === 2,
        { timeout: 15000, message: 'joined again' });
      const ids = await feedUntil(redis, room, () => w.stdout().length > 0, 'a line after the restart');
      assert.deepEqual(await h.waitExit(w, 10000), { code: 0, signal: null }, w.describe());
      assert.equal(JSON.parse(w.stdout()).messageId, ids[0]);
      assert.match(w.stderr(), /disconnected \(the server closed the WebSocket \(code 1001\)\); reconnecting in 0\.5 s/);
    } finally {
      await h.stop(w);
    }
  }));

  it('says when nothing listens (exit 3) and rejects bad usage (exit 2)', logs(async () => {
    const free = await h.freePort();
    const w = watch(['r', '--url', `http://127.0.0.1:${free}`]);
    assert.deepEqual(await h.waitExit(w, 10000), { code: 3, signal: null });
    assert.equal(w.stderr(), `streamioctl: cannot connect to 127.0.0.1 port ${free}: Connection refused\n`);
    for (const args of [[], ['r', '--count', '0'], ['r', '--url', 'https://x'], ['r', '--bogus']]) {
      const u = watch(args);
      assert.equal((await h.waitExit(u, 10000)).code, 2, `${args.join(' ')}\n${u.describe()}`);
    }
  }));
});

describe('streamioctl watch with authentication', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  const SECRET = 'try-it-secret-0123456789abcdef-012345';
  let redis;
  let srv;
  const b64url = (s) => Buffer.from(s).toString('base64url');
  const sign = (claims) => {
    const body = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
    return `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
  };

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ AUTH_JWT_SECRET: SECRET }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('sends --token, and exits 1 with the server\'s reason when refused', logs(async () => {
    const token = sign({ exp: Math.floor(Date.now() / 1000) + 600, rooms: ['auth.ok.*'] });
    const none = watch(['auth.ok.1', '--url', srv.url]);
    assert.deepEqual(await h.waitExit(none, 10000), { code: 1, signal: null });
    assert.equal(none.stderr(), 'streamioctl: the server refused the connection: Authentication required\n');
    const denied = watch(['auth.ok.1', 'secret.room', '--url', srv.url, '--token', token]);
    assert.deepEqual(await h.waitExit(denied, 10000), { code: 1, signal: null });
    assert.match(denied.stderr(), /joined auth\.ok\.1\n/);
    assert.match(denied.stderr(), /streamioctl: join-room secret\.room refused: Room not allowed\n$/);
    const room = h.uniq('auth.ok');
    const ok = watch([room, '--url', srv.url, '--token', token, '--count', '1']);
    try {
      await h.waitUntil(() => ok.stderr().includes('joined'), { timeout: 10000, message: 'joined' });
      await feedUntil(redis, room, () => ok.stdout().length > 0, 'the line');
      assert.deepEqual(await h.waitExit(ok, 10000), { code: 0, signal: null });
      assert.equal(JSON.parse(ok.stdout()).roomId, room);
    } finally {
      await h.stop(ok);
    }
  }));
});

describe('the /debug console in headless Chromium', { timeout: 180000, skip: h.ANCHOR_SKIP || (!CHROMIUM && 'chromium not installed') }, () => {
  let redis;
  let srv;
  let port;
  let page;
  const env = () => ({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '200', STREAMIO_DEBUG_PAGE: '1', PORT: String(port) });

  before(async () => {
    redis = await h.startRedis();
    port = await h.freePort();
    srv = await h.startStreamio(env(), { redis });
  });

  after(async () => {
    if (page) await page.close();
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  // The page's state as data: rooms with their state, messages, health strip.
  const snapshot = () => page.evaluate(`({
    state: document.body.dataset.state,
    stateText: document.getElementById('state').textContent,
    rooms: [...document.querySelectorAll('#rooms li')].map((li) => [li.dataset.room, li.className]),
    messages: [...document.querySelectorAll('#log .msg')].map((a) => ({
      room: a.dataset.room, id: a.dataset.id,
      meta: [...a.querySelectorAll('.meta span')].map((s) => s.textContent),
      body: a.querySelector('pre').textContent })),
    health: ['workers', 'clients', 'streams', 'redis', 'version'].map((k) => document.getElementById('h-' + k).textContent),
    notice: document.getElementById('notice').textContent,
  })`);

  it('joins the room of its URL, shows an entry XADDed after the join, with room, event and latency', logs(async () => {
    const room = h.uniq('debug.console');
    page = await openPage(`${srv.url}/debug#${encodeURIComponent(room)}`);
    await h.waitUntil(async () => {
      const s = await snapshot();
      return s.state === 'connected' && s.rooms.length === 1 && s.rooms[0][1] === 'joined';
    }, { timeout: 20000, message: 'the page connected and joined' });
    const before = await snapshot();
    assert.deepEqual(before.rooms, [[room, 'joined']]);
    assert.deepEqual(before.messages, []);
    const ids = await feedUntil(redis, room, async () => (await snapshot()).messages.length > 0,
      'the entry on the page', ['event', 'order.created', 'data', '{"order":42,"items":["a","b"]}']);
    const s = await snapshot();
    const m = s.messages[s.messages.length - 1];
    assert.equal(m.room, room);
    assert.equal(m.id, ids[0]);
    assert.equal(m.meta[0], room);
    assert.equal(m.meta[1], 'order.created');
    const lat = /^latency (\d+) ms$/.exec(m.meta[2]);
    assert.ok(lat, `latency shown: ${m.meta[2]}`);
    assert.ok(Number(lat[1]) < 15000, m.meta[2]);
    assert.deepEqual(JSON.parse(m.body), { event: 'order.created', data: { order: 42, items: ['a', 'b'] } });
    assert.match(m.body, /\n {2}"data": \{\n/, 'pretty-printed');
    await h.waitUntil(async () => (await snapshot()).health[0] === '2', { timeout: 5000, message: 'the health strip' });
    const health = (await snapshot()).health;
    assert.deepEqual(health.slice(0, 1).concat(health.slice(3)), ['2', 'up', `v${(await srv.health()).body.version}`]);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const png = await page.screenshot(path.join(ARTIFACTS, 'debug-console.png'));
    assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
    assert.ok(png.length > 10000, `a rendered page, not a blank one (${png.length} bytes)`);
  }));

  it('joins and leaves rooms from its form, and refuses nothing it should not', logs(async () => {
    const room = h.uniq('debug.form');
    await page.evaluate(`document.getElementById('room').value = ${JSON.stringify(room)};
      document.getElementById('join').requestSubmit(); true`);
    await h.waitUntil(async () => (await snapshot()).rooms.some(([r, st]) => r === room && st === 'joined'),
      { timeout: 10000, message: 'the second room joined' });
    await feedUntil(redis, room, async () => (await snapshot()).messages.some((m) => m.room === room),
      'an entry of the second room');
    await page.evaluate(`document.querySelector('#rooms li[data-room=${JSON.stringify(room)}] button').click(); true`);
    await h.waitUntil(async () => !(await snapshot()).rooms.some(([r]) => r === room),
      { timeout: 5000, message: 'left' });
    assert.equal(await page.evaluate('location.hash.split(",").length'), 1);
    assert.equal((await snapshot()).notice, '');
  }));

  it('shows when the server goes away, reconnects by itself and joins its rooms again', logs(async () => {
    assert.equal(await srv.stop(), 0);
    await h.waitUntil(async () => {
      const s = await snapshot();
      return s.state === 'disconnected' && /reconnecting in \d+ s/.test(s.stateText);
    }, { timeout: 10000, message: 'the disconnected state' });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot(path.join(ARTIFACTS, 'debug-console-disconnected.png'));
    srv = await h.startStreamio(env(), { redis });
    await h.waitUntil(async () => {
      const s = await snapshot();
      return s.state === 'connected' && s.rooms.every(([, st]) => st === 'joined');
    }, { timeout: 30000, message: 'connected and joined again' });
    const room = (await snapshot()).rooms[0][0];
    const n = (await snapshot()).messages.length;
    await feedUntil(redis, room, async () => (await snapshot()).messages.length > n, 'an entry after the reconnection');
  }));
});

describe('cross-origin pages kept out are named in the log', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let open;
  let listed;

  before(async () => {
    redis = await h.startRedis();
    open = await h.startStreamio({}, { redis });
    listed = await h.startStreamio({ SOCKETIO_CORS_ORIGINS: 'http://app.example' }, { redis });
  });

  after(async () => {
    if (open) await open.stop();
    if (listed) await listed.stop();
    if (redis) await redis.stop();
  });

  const warnings = (srv) => srv.handle.stderr().split('\n').filter((l) => l.includes('cross-origin'));
  const poll = (srv, origin) => fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { Origin: origin } : {} });

  it('warns, sampled, for a polling request of another origin when SOCKETIO_CORS_ORIGINS is unset', h.withLogs(() => open, async () => {
    for (let i = 0; i < 10; i++) {
      const r = await poll(open, 'http://page.example:8080');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    }
    // no warning for a client without Origin (Node, curl) or for a page of this server
    assert.equal((await poll(open)).status, 200);
    assert.equal((await poll(open, open.url)).status, 200);
    const w = await h.waitUntil(() => warnings(open).length === 4 && warnings(open),
      { timeout: 5000, message: '4 warnings (1st, 2nd, 4th, 8th)' });
    assert.match(w[0], /WARN.*refused a cross-origin polling request from Origin http:\/\/page\.example:8080: SOCKETIO_CORS_ORIGINS is not set; add the origin to it to allow that page \(1 so far\)$/);
    assert.match(w[3], /\(8 so far\)$/);
  }));

  it('warns for a WebSocket upgrade of an origin the list does not name, not for a listed one', h.withLogs(() => listed, async () => {
    const err = await wsOpen(listed.port, { headers: { Origin: 'http://evil.example' } }).then(
      () => assert.fail('upgrade accepted'), (e) => e);
    assert.equal(err.status, 403);
    const ok = await wsOpen(listed.port, { headers: { Origin: 'http://app.example' } });
    ok.close();
    assert.equal((await poll(listed, 'http://app.example')).headers.get('access-control-allow-origin'), 'http://app.example');
    const w = await h.waitUntil(() => warnings(listed).length === 1 && warnings(listed),
      { timeout: 5000, message: 'the warning' });
    assert.match(w[0], /refused a cross-origin WebSocket upgrade from Origin http:\/\/evil\.example: SOCKETIO_CORS_ORIGINS does not list it/);
    await h.sleep(300); // a listed origin must not have been logged: nothing more arrives
    assert.equal(warnings(listed).length, 1);
  }));
});

describe('make run (scripts/run.sh)', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  it('turns the /debug page on, prints its URL and the watch command, and stops with 0 on SIGTERM', async () => {
    const redis = await h.startRedis();
    const port = await h.freePort();
    const env = { ...h.baseEnv(), REDIS_HOST: h.HOST, REDIS_PORT: String(redis.port), PORT: String(port),
      HOST: h.HOST, CLUSTER_WORKERS: '1' };
    delete env.STREAMIO_DEBUG_PAGE;
    const run = h.spawnTracked(path.join(root, 'scripts/run.sh'), [process.env.STREAMIO_BIN], { env, name: 'run.sh' });
    try {
      await h.waitUntil(async () => {
        if (!run.running) throw Object.assign(new Error(run.describe()), { fatal: true });
        const r = await fetch(`http://127.0.0.1:${port}/debug`).catch(() => null);
        return r && r.status === 200 && /<title>streamio console<\/title>/.test(await r.text());
      }, { timeout: 20000, message: '/debug served' });
      const out = run.stdout();
      assert.ok(out.includes(`run: debug console: http://127.0.0.1:${port}/debug#chat.user.123`), out);
      assert.ok(out.includes(`run: watch: ${path.dirname(process.env.STREAMIO_BIN)}/streamioctl watch chat.user.123 --url http://127.0.0.1:${port}`), out);
      assert.ok(out.includes(`redis-cli -p ${redis.port} XADD chat.user.123`), out);
    } finally {
      assert.equal(await h.stop(run), 0);
      await redis.stop();
    }
  });
  // run.sh with `env` (on top of the stripped environment) until /health answers; returns
  // [the run.sh handle, the /health body]
  async function runUntilHealthy(env, want) {
    const port = await h.freePort();
    const run = h.spawnTracked(path.join(root, 'scripts/run.sh'), [process.env.STREAMIO_BIN], {
      env: { ...h.baseEnv(), PORT: String(port), HOST: h.HOST, CLUSTER_WORKERS: '1', STREAMIO_DEBUG_PAGE: '0', ...env },
      name: 'run.sh',
    });
    const body = await h.waitUntil(async () => {
      if (!run.running) throw Object.assign(new Error(run.describe()), { fatal: true });
      const r = await h.healthRetry(`http://127.0.0.1:${port}`, { attempts: 1 }).catch(() => null);
      return r && r.body && r.body.redisConnected === want && r.body;
    }, { timeout: 30000, message: `/health with redisConnected ${want}` });
    return [run, body];
  }

  it('starts a private redis-server when nothing answers at REDIS_HOST:REDIS_PORT', async () => {
    const nobody = await h.freePort();
    const [run] = await runUntilHealthy({ REDIS_HOST: h.HOST, REDIS_PORT: String(nobody) }, true);
    try {
      assert.match(run.stdout(), new RegExp(`no Redis at ${h.HOST}:${nobody}, started a private redis-server on 127\\.0\\.0\\.1:\\d+`));
    } finally {
      assert.equal(await h.stop(run), 0);
    }
  });

  it('on Ctrl-C (SIGINT to the whole group) drains streamio before stopping its private redis-server', async () => {
    const nobody = await h.freePort();
    const port = await h.freePort();
    const run = h.spawnTracked(path.join(root, 'scripts/run.sh'), [process.env.STREAMIO_BIN], {
      env: { ...h.baseEnv(), PORT: String(port), HOST: h.HOST, CLUSTER_WORKERS: '2', STREAMIO_DEBUG_PAGE: '0',
        REDIS_HOST: h.HOST, REDIS_PORT: String(nobody) },
      name: 'run.sh', detached: true,
    });
    try {
      await h.waitUntil(async () => {
        if (!run.running) throw Object.assign(new Error(run.describe()), { fatal: true });
        const r = await h.healthRetry(`http://127.0.0.1:${port}`, { attempts: 1 }).catch(() => null);
        return r && r.body && r.body.redisConnected === true && r.body.workers.every((w) => w.redisConnected);
      }, { timeout: 30000, message: '/health with every worker connected' });
      const redisPid = Number(/started a private redis-server on [\d.:]+ \(pid (\d+)\)/.exec(run.stdout())[1]);
      process.kill(-run.pid, 'SIGINT'); // what a terminal does on Ctrl-C
      assert.deepEqual(await h.waitExit(run, 20000), { code: 0, signal: null }, run.describe());
      assert.match(run.stderr(), /master exiting \(status 0\)/, run.describe());
      assert.doesNotMatch(run.stderr(), /connection closed by the server|connection lost/i, run.describe());
      assert.throws(() => process.kill(redisPid, 0), { code: 'ESRCH' }, 'the private redis-server was left running');
    } finally {
      await h.stop(run);
    }
  });

  it('uses REDIS_URL as given and starts no redis-server of its own', async () => {
    const redis = await h.startRedis();
    const [run] = await runUntilHealthy({ REDIS_URL: `redis://${h.HOST}:${redis.port}/2` }, true);
    try {
      const out = run.stdout();
      assert.ok(out.includes('run: REDIS_URL is set: using that Redis (no private redis-server)'), out);
      assert.ok(!out.includes('started a private redis-server'), out);
      assert.ok((await redis.call('CLIENT', 'LIST')).includes('db=2'), 'streamio is connected to db 2 of that Redis');
    } finally {
      assert.equal(await h.stop(run), 0);
      await redis.stop();
    }
  });

  for (const [name, env] of [
    ['REDIS_SENTINELS', (p) => ({ REDIS_SENTINELS: `${h.HOST}:${p}`, REDIS_SENTINEL_NAME: 'mymaster' })],
    ['REDIS_CLUSTER_NODES', (p) => ({ REDIS_CLUSTER_NODES: `${h.HOST}:${p}` })],
  ]) {
    it(`with ${name} set, starts no redis-server even when nothing answers`, async () => {
      const nobody = await h.freePort();
      const [run] = await runUntilHealthy(env(nobody), false);
      try {
        const out = run.stdout();
        assert.ok(out.includes(`run: ${name} is set: using that Redis (no private redis-server)`), out);
        assert.ok(!out.includes('started a private redis-server'), out);
      } finally {
        assert.equal(await h.stop(run), 0);
      }
    });
  }
});
