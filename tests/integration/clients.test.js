'use strict';
// Real clients against CLUSTER_WORKERS=2 (no sticky sessions): npm socket.io-client (default
// options and polling only), Debian's python3-socketio (default, polling, websocket), and a
// headless Chromium running the socket.io browser bundle. Each joins a room and must show the
// room:message of an entry added to that stream. Clients that are not installed are skipped.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const PYTHON = '/usr/bin/python3';
const CHROMIUM = h.CHROMIUM;
const pyOk = fs.existsSync(PYTHON) &&
  require('node:child_process').spawnSync(PYTHON, ['-c', 'import socketio'], { timeout: 10000 }).status === 0;

// Adds entries to `room` until `seen()` resolves truthy (the stream is discovered meanwhile).
async function feed(redis, room, seen, label) {
  return h.waitUntil(async () => {
    await redis.call('XADD', room, '*', 'event', 'client.test', 'data', '{"hello":"world"}');
    return seen();
  }, { timeout: 15000, interval: 400, message: label });
}

describe('real clients (CLUSTER_WORKERS=2)', { timeout: 180000 }, () => {
  let redis;
  let srv;
  let page;

  before(async () => {
    redis = await h.startRedis();
    // The test page is served from another origin: CORS must allow it.
    page = await h.startTestPage();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '300',
      SOCKETIO_CORS_ORIGINS: page.url }, { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (page) page.close();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  const logs = (fn) => h.withLogs(() => srv, fn);

  for (const [label, opts] of [['default options', {}], ["transports:['polling']", { transports: ['polling'] }]]) {
    it(`npm socket.io-client, ${label}`, logs(async () => {
      const s = await h.connectClient(srv.url, { transports: undefined, ...opts });
      const room = h.uniq('clients.npm');
      await h.joinRoom(s, room);
      const inbox = h.collect(s);
      await feed(redis, room, () => inbox.items.length > 0, 'room:message');
      assert.equal(inbox.items[0].roomId, room);
      assert.deepStrictEqual(inbox.items[0].message.data, { hello: 'world' });
      h.closeClient(s);
    }));
  }

  for (const mode of ['default', 'polling', 'websocket']) {
    it(`python3-socketio client, ${mode}`, { skip: pyOk ? false : 'python3-socketio not installed' },
      logs(async () => {
        const room = h.uniq('clients.py');
        const py = h.spawnTracked(PYTHON, [path.join(__dirname, 'clients/py_client.py'), srv.url, room, mode],
          { name: `py-${mode}` });
        try {
          await h.waitUntil(() => py.stdout().includes('"joined"') || !py.running,
            { timeout: 15000, message: 'python client joined' });
          assert.match(py.stdout(), /"joined": \{"ok": true/, py.describe());
          await feed(redis, room, () => py.stdout().includes('"message"') || !py.running, 'python room:message');
          const exit = await h.waitExit(py, 10000);
          assert.deepStrictEqual(exit, { code: 0, signal: null }, py.describe());
          const lines = py.stdout().trim().split('\n').map((l) => JSON.parse(l));
          const msg = lines.find((l) => l.message).message;
          assert.equal(msg.roomId, room);
          assert.equal(lines.find((l) => l.transport).transport, mode === 'polling' ? 'polling' : 'websocket');
        } finally {
          if (py.running) await h.stop(py);
        }
      }));
  }

  it('headless Chromium with the socket.io browser bundle', { skip: CHROMIUM ? false : 'chromium not installed' },
    logs(async () => {
      const room = h.uniq('clients.chromium');
      page.html = `<!doctype html><html><body><pre id="out">waiting</pre>
<script src="/socket.io.min.js"></script>
<script>
const report = (o) => fetch('/report?' + encodeURIComponent(JSON.stringify(o)));
const s = io(${JSON.stringify(srv.url)});
s.on('connect', async () => {
  const ack = await s.emitWithAck('join-room', ${JSON.stringify(room)});
  report({ joined: ack });
});
s.on('room:message', (m) => {
  document.getElementById('out').textContent = JSON.stringify(m);
  report({ message: m, transport: s.io.engine.transport.name });
});
</script></body></html>`;
      await h.withChromium(page.url, async (chrome) => {
        await h.waitUntil(() => page.events.find((e) => e.joined) || (!chrome.running && fatal(chrome)),
          { timeout: 30000, message: 'the page joined the room' });
        assert.deepStrictEqual(page.events.find((e) => e.joined).joined, { ok: true, roomId: room });
        const ev = await feed(redis, room, () => page.events.find((e) => e.message), 'room:message in the page');
        assert.equal(ev.message.roomId, room);
        assert.deepStrictEqual(ev.message.message.data, { hello: 'world' });
      });
    }));
});

function fatal(handle) {
  const err = new Error(`exited early\n${handle.describe()}`);
  err.fatal = true;
  throw err;
}
