'use strict';
// The master never waits: neither on a control-socket client that sends its request a byte at a
// time, nor on a Redis that accepts connections and never answers. Meanwhile it reaps and
// respawns a killed worker and answers streamioctl. The proof is in the order of events, not in
// timings: the slow client is still connected, and the SCAN the master sent is still unanswered
// on the same connection, when the respawn and the answers have already happened.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-master-loop-'));
const ctl = h.streamioctl;

// Kills worker 0 with SIGKILL and waits for /health to list a new child in its place.
async function killAndAwaitRespawn(srv) {
  const before = (await h.healthRetry(srv)).body.workers.map((w) => w.pid);
  const victim = before[0];
  h.killWorker(srv, victim);
  const body = await h.waitUntil(async () => {
    const b = (await h.healthRetry(srv)).body;
    const pids = b.workers.map((w) => w.pid);
    return pids.length === before.length && !pids.includes(victim)
      && pids.every((p) => h.parentPid(p) === srv.pid) ? b : null;
  }, { timeout: 8000, interval: 100, message: `worker ${victim} respawned` });
  return { victim, body };
}

describe('the master while a control client sends a byte every 0.5 s', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const sock = path.join(tmp, 'slow.sock');

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', STREAMIO_CONTROL_SOCKET: sock }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('reaps and respawns a killed worker and answers streamioctl meanwhile', logs(async () => {
    const slow = net.createConnection(sock);
    await new Promise((resolve, reject) => slow.once('connect', resolve).once('error', reject));
    let closedByServer = false;
    slow.on('close', () => { closedByServer = true; });
    slow.on('error', () => {});
    // "8:" and then one byte every 0.5 s: never a whole request, never a full second of silence
    slow.write('8:');
    let sent = 0;
    const dribble = setInterval(() => { if (sent < 16) { slow.write('s'); sent += 1; } }, 500);
    try {
      await h.sleep(600);
      const { victim } = await killAndAwaitRespawn(srv);
      const st = await ctl(sock, 'status');
      assert.equal(st.code, 0, st.stderr);
      assert.equal(JSON.parse(st.stdout).pid, srv.pid);
      assert.ok(!closedByServer && sent < 16, 'the slow client was still sending all along');
      assert.match(srv.handle.output(), new RegExp(`worker 0 \\(pid ${victim}\\) killed by signal 9`));
    } finally {
      clearInterval(dribble);
      slow.destroy();
    }
  }));
});

describe('a forked worker', { timeout: 30000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const sock = path.join(tmp, 'fds.sock');

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', STREAMIO_CONTROL_SOCKET: sock }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  const links = (pid) => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });

  it('holds none of the master\'s loop descriptors, only a loop of its own', logs(async () => {
    const master = links(srv.pid);
    assert.equal(master.filter((l) => l === 'anon_inode:[signalfd]').length, 1, master.join(' '));
    for (const w of (await h.healthRetry(srv)).body.workers) {
      const fds = links(w.pid);
      assert.equal(fds.filter((l) => l === 'anon_inode:[signalfd]').length, 0, fds.join(' '));
      assert.equal(fds.filter((l) => l === 'anon_inode:[eventpoll]').length, 1, fds.join(' '));
    }
  }));
});

describe('the master while Redis accepts connections and never answers', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let hole;
  let srv;
  const conns = []; // {sock, data, closed}
  const sock = path.join(tmp, 'hole.sock');

  before(async () => {
    hole = net.createServer((s) => {
      const c = { sock: s, data: '', closed: false };
      conns.push(c);
      s.on('data', (d) => { c.data += d.toString('latin1'); });
      s.on('close', () => { c.closed = true; });
      s.on('error', () => {});
    });
    await new Promise((resolve) => hole.listen(0, h.HOST, resolve));
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2', STREAMIO_CONTROL_SOCKET: sock, SHUTDOWN_TIMEOUT: '1000',
      REDIS_PORT: String(hole.address().port),
    });
  });

  after(async () => {
    if (srv) await srv.stop(15000);
    for (const c of conns) c.sock.destroy();
    if (hole) hole.close();
  });

  const logs = (fn) => h.withLogs(() => srv, fn);
  // the master's own connection: it names itself in its handshake (CLIENT SETNAME master)
  const masterConns = () => conns.filter((c) => c.data.includes('$7\r\nSETNAME\r\n$6\r\nmaster\r\n'));

  it('reaps, respawns and answers streamioctl while its Redis handshake waits for a reply', logs(async () => {
    await h.waitUntil(() => masterConns().length >= 1, { timeout: 10000, message: 'the master sent its handshake' });
    const { victim } = await killAndAwaitRespawn(srv);
    const st = await ctl(sock, 'status');
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(st.stdout).workers.length, 2);
    // an emit does not wait either: with no answered handshake there is no connection to use
    const b = await ctl(sock, 'broadcast', 'notice', '{"a":1}');
    assert.equal(b.code, 1);
    assert.match(b.stderr, /redis \S+ unreachable: not connected/);
    assert.match(srv.handle.output(), new RegExp(`worker 0 \\(pid ${victim}\\) killed by signal 9`));
    // the handshake is bounded as well: the master says so and tries again on a new connection
    await h.waitUntil(() => /redis master \([^)]*\): no answer within \d+ ms \(connect\)/.test(srv.handle.output()),
      { timeout: 15000, message: 'the connect timeout logged' });
    await h.waitUntil(() => masterConns().length >= 2, { timeout: 20000, message: 'a new handshake' });
    assert.ok(masterConns()[0].closed, 'the unanswered connection was closed');
  }));

  it('still stops with exit status 0 on SIGTERM', logs(async () => {
    assert.equal(await srv.stop(15000), 0);
    srv = null;
  }));
});
