'use strict';
// streamioctl against a live server (status, rooms, clients, broadcast, sendroom, errors), and
// the packaging: `make install` layout and `systemd-analyze verify` of the installed unit.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const root = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-admin-'));
const ctl = h.streamioctl;
const ctlBin = () => path.join(path.dirname(process.env.STREAMIO_BIN || ''), 'streamioctl');

// Runs the interactive prompt with `lines` on its standard input (a pipe, or a terminal through
// script(1) when tty); resolves {code, stdout, stderr} once it exits (bounded).
function prompt(sock, lines, { tty = false } = {}) {
  const cmd = tty ? 'script' : ctlBin();
  const args = tty ? ['-qec', `${ctlBin()} --socket ${sock}`, '/dev/null'] : ['--socket', sock];
  return h.withDeadline(new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(lines.map((l) => `${l}\n`).join(''));
  }), 15000, `streamioctl prompt ${lines.join('; ')}`);
}

describe('streamioctl', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const sock = path.join(tmp, 'control.sock');

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', STREAMIO_CONTROL_SOCKET: sock }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('says clearly when no server runs', async () => {
    const r = await ctl(path.join(tmp, 'nothing.sock'), 'status');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /streamio is not running \(nothing listens on .*nothing\.sock\)/);
    const u = await ctl(sock, 'nonsense');
    assert.equal(u.code, 1);
    assert.match(u.stderr, /usage: status \| rooms/);
  });

  it('without a command is the seed\'s SERVER> prompt: status, rooms, clients, broadcast, sendroom, exit', logs(async () => {
    const room = h.uniq('admin.prompt');
    const clients = await h.connectClients(srv.url, 2);
    const got = clients.map((c) => {
      const box = [];
      c.on('message', (...a) => box.push(a));
      return box;
    });
    await h.joinRoom(clients[0], room);
    const r = await prompt(sock, ['status', 'rooms', '', 'clients', 'broadcast hello there',
      `sendroom ${room} {"n":1}`, 'bogus', 'exit', 'broadcast after exit']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /SERVER>/); /* no prompt when the input is not a terminal */
    assert.match(r.stdout, /"status":"healthy"/);
    assert.match(r.stdout, /"rooms":1/);
    assert.match(r.stdout, /"clients":2/);
    assert.match(r.stderr, /streamioctl: unknown command \(help lists them\)/);
    await h.waitUntil(() => got[0].length === 2 && got[1].length === 1, { timeout: 5000, message: 'prompt messages' });
    assert.deepStrictEqual(got[0], [['hello there'], [{ n: 1 }]]);
    assert.deepStrictEqual(got[1], [['hello there']]);
    await h.sleep(300);
    assert.equal(got[1].length, 1); /* nothing after exit */
    h.closeAllClients();
  }));

  it('on a terminal the prompt edits lines and keeps the session\'s history (libedit)', logs(async () => {
    // the second line is the up arrow: the history brings `status` back
    const r = await prompt(sock, ['status', '\x1b[A', 'exit'], { tty: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERVER> /);
    assert.equal(r.stdout.match(/"status":"healthy"/g).length, 2, r.stdout);
    assert.match(r.stdout, /status \| rooms \| clients \| broadcast <message> \| sendroom <room> <message> \| exit/);
    assert.match(r.stdout, /"status":"healthy"/);
  }));

  it('answers while another client trickles a byte every 0.5 s, and is private to root', logs(async () => {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
    const slow = require('node:net').connect(sock);
    await new Promise((resolve, reject) => { slow.once('connect', resolve); slow.once('error', reject); });
    let closed = false;
    slow.on('close', () => { closed = true; });
    slow.on('error', () => {});
    let trickled = 0;
    let answered = false;
    const trickle = (async () => {
      for (; trickled < 20 && !answered && !closed; trickled++) {
        slow.write('9');
        await h.sleep(500);
      }
    })();
    await h.waitUntil(() => trickled > 0, { message: 'the first byte' });
    const st = await ctl(sock, 'status');
    answered = true;
    const during = trickled;
    await trickle;
    slow.destroy();
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(st.stdout).pid, srv.pid);
    assert.ok(!closed && during < 20, `answered while the slow client was still sending (${during} bytes sent)`);
  }));

  it('status, rooms and clients describe the live server', logs(async () => {
    const st = await ctl(sock, 'status');
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assert.equal(s.status, 'healthy');
    assert.equal(s.pid, srv.pid);
    assert.equal(s.workers.length, 2);
    const room = h.uniq('admin.room');
    const clients = await h.connectClients(srv.url, 3);
    await h.joinRoom(clients[0], room);
    const c = await h.waitUntil(async () => {
      const r = await ctl(sock, 'clients');
      const j = JSON.parse(r.stdout);
      return j.clients === 3 ? j : null;
    }, { timeout: 5000, message: 'clients 3' });
    assert.equal(c.workers.reduce((a, w) => a + w.clients, 0), 3);
    const rooms = JSON.parse((await ctl(sock, 'rooms')).stdout);
    assert.equal(rooms.rooms, 1);
    const byRoom = await ctl(sock, 'clients', room);
    assert.equal(byRoom.code, 1);
    assert.match(byRoom.stderr, /clients <room> asks every server .* set SOCKETIO_REDIS_ADAPTER=true or sharded/);
    h.closeAllClients();
  }));

  it('broadcast reaches every client, sendroom only the room', logs(async () => {
    const room = h.uniq('admin.send');
    const clients = await h.connectClients(srv.url, 4);
    const got = clients.map((s) => {
      const box = [];
      s.on('notice', (...a) => box.push(a));
      return box;
    });
    await h.joinRoom(clients[0], room);
    await h.joinRoom(clients[1], room);
    const b = await ctl(sock, 'broadcast', 'notice', '{"text":"hello all","n":1}');
    assert.equal(b.code, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).ok, true);
    await h.waitUntil(() => got.every((box) => box.length === 1), { timeout: 5000, message: 'broadcast on 4 clients' });
    for (const box of got) assert.deepStrictEqual(box[0], [{ text: 'hello all', n: 1 }]);
    const r = await ctl(sock, 'sendroom', room, 'notice', '"only the room"');
    assert.equal(r.code, 0, r.stderr);
    await h.waitUntil(() => got[0].length === 2 && got[1].length === 2, { timeout: 5000, message: 'sendroom' });
    await h.sleep(300);
    assert.deepStrictEqual(got[0][1], ['only the room']);
    assert.equal(got[2].length, 1);
    assert.equal(got[3].length, 1);
    const bad = await ctl(sock, 'broadcast', 'notice', '{not json');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not valid JSON/);
    const use = await ctl(sock, 'sendroom', room);
    assert.equal(use.code, 1);
    assert.match(use.stderr, /usage: sendroom \[--nsp \/ns\] <room> <event> <json>/);
    h.closeAllClients();
  }));

  it('removes its control socket on exit', logs(async () => {
    assert.ok(fs.existsSync(sock));
    assert.equal(await srv.stop(), 0);
    srv = null;
    assert.ok(!fs.existsSync(sock));
  }));
});

describe('one broadcast subscriber from the start', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  // Two workers starting together must not both subscribe: while both subscriptions overlap each
  // worker may apply what arrives, and every client gets the broadcast twice.
  it('the workers of a server that just started hold one subscription, and a broadcast arrives once', async () => {
    for (let run = 0; run < 3; run++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-admin-start-'));
      const sock = path.join(dir, 'control.sock');
      const redis = await h.startRedis();
      const srv = await h.startStreamio({ CLUSTER_WORKERS: '2', STREAMIO_CONTROL_SOCKET: sock }, { redis });
      try {
        const clients = await h.connectClients(srv.url, 2);
        const got = clients.map((c) => {
          const box = [];
          c.on('message', (...a) => box.push(a));
          return box;
        });
        const subscribers = async () => {
          const r = await ctl(sock, 'broadcast', 'probe', '1');
          assert.equal(r.code, 0, r.stderr);
          return JSON.parse(r.stdout).subscribers;
        };
        await h.waitUntil(async () => (await subscribers()) >= 1, { timeout: 10000, message: 'the subscription' });
        const seen = [];
        for (let i = 0; i < 15; i++) seen.push(await subscribers());
        assert.deepStrictEqual(seen, Array(15).fill(1), `PUBLISH reached ${seen.join(',')} subscribers`);
        const b = await ctl(sock, 'broadcast', 'message', '"once"');
        assert.equal(b.code, 0, b.stderr);
        const d = await ctl(sock, 'broadcast', 'message', '"done"');
        assert.equal(d.code, 0, d.stderr);
        await h.waitUntil(() => got.every((box) => box.some((m) => m[0] === 'done')), { timeout: 5000, message: 'both broadcasts' });
        for (const box of got) assert.deepStrictEqual(box, [['once'], ['done']]);
        h.closeAllClients();
      } finally {
        await srv.stop();
        await redis.stop();
      }
    }
  });
});

describe('packaging', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  const asan = /\/asan\//.test(process.env.STREAMIO_BIN || '');
  const dest = path.join(tmp, 'inst');
  const vars = [`PREFIX=${dest}/usr`, `SYSCONFDIR=${dest}/etc`, `UNITDIR=${dest}/unit`];
  if (asan) vars.push('ASAN=1');

  it('make install puts the binary, the CLI, the unit and the sample env in place', () => {
    const r = spawnSync('make', ['-s', '-C', root, 'install', ...vars], { encoding: 'utf8', timeout: 100000 });
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['usr/bin/streamio', 'usr/bin/streamioctl']) {
      assert.ok(fs.statSync(path.join(dest, f)).mode & 0o111, `${f} executable`);
    }
    const unit = fs.readFileSync(path.join(dest, 'unit/streamio.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=${dest}/usr/bin/streamio$`, 'm'));
    assert.match(unit, new RegExp(`^EnvironmentFile=-${dest}/etc/streamio/streamio.env$`, 'm'));
    for (const d of ['Type=notify', 'ExecReload=+/bin/sh -c ', 'exec /bin/kill -HUP $MAINPID', 'KillMode=mixed',
      'WatchdogSec=', 'LimitNOFILE=', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'DynamicUser=yes',
      'User=streamio']) {
      assert.ok(unit.includes(d), d);
    }
    assert.match(fs.readFileSync(path.join(dest, 'etc/streamio/streamio.env.sample'), 'utf8'), /#CLUSTER_WORKERS=/);
    const u = spawnSync('make', ['-s', '-C', root, 'uninstall', ...vars], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    assert.ok(!fs.existsSync(path.join(dest, 'usr/bin/streamio')));
    spawnSync('make', ['-s', '-C', root, 'install', ...vars], { encoding: 'utf8', timeout: 100000 });
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  it('the installed unit passes systemd-analyze verify with no warning',
    { skip: analyze ? false : 'systemd-analyze not installed' }, () => {
      const unit = path.join(dest, 'unit/streamio.service');
      assert.ok(fs.existsSync(unit), 'installed by the previous test');
      const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', 'no warning');
    });
});
