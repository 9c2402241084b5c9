'use strict';
// Socket.IO v5 / Engine.IO v4 over raw WebSocket and raw HTTP, byte for byte (protocol.md §1.6,
// §2.1-§2.4): namespaces, acks, binary attachments, the rejection table, connectTimeout, and the
// polling → WebSocket upgrade.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const WebSocket = require('ws');
const h = require('./lib/harness');

// A raw WebSocket that records every message (text as string, binary as Buffer) and the close.
function rawWs(srv, query = '') {
  const ws = new WebSocket(`ws://${h.HOST}:${srv.port}/socket.io/?EIO=4&transport=websocket${query}`);
  const msgs = [];
  let closed = false;
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  ws.on('message', (d, isBinary) => { msgs.push(isBinary ? Buffer.from(d) : d.toString()); poke(); });
  ws.on('close', () => { closed = true; poke(); });
  ws.on('error', () => {});
  const until = (check, ms, label) => {
    let fn;
    const p = new Promise((resolve) => {
      fn = () => { const v = check(); if (v !== undefined) resolve(v); };
      waiters.add(fn);
      fn();
    });
    return h.withDeadline(p, ms, label).finally(() => waiters.delete(fn));
  };
  return {
    ws,
    msgs,
    get closed() { return closed; },
    send: (m) => ws.send(m),
    next: (i, ms = 3000) => until(() => msgs[i], ms, `message #${i} (got ${JSON.stringify(msgs)})`),
    closedWithin: (ms) => until(() => (closed ? true : undefined), ms, `close (got ${JSON.stringify(msgs)})`),
  };
}

function get(srv, path, timeout = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: h.HOST, port: srv.port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

const SID = /^[A-Za-z0-9_-]{20}$/;

describe('Socket.IO protocol over raw WebSocket and HTTP', { timeout: 90000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1', SOCKETIO_NAMESPACES: '/admin',
      SOCKETIO_PING_INTERVAL: '5000', SOCKETIO_PING_TIMEOUT: '5000', SOCKETIO_CONNECT_TIMEOUT: '1500' },
    { redis });
  });

  after(async () => {
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  const logs = (fn) => h.withLogs(() => srv, fn);

  it('connects namespaces side by side, keeps unknown ones refused, acks join-room', logs(async () => {
    const c = rawWs(srv);
    const open = JSON.parse((await c.next(0)).slice(1));
    assert.deepStrictEqual(open.upgrades, []);
    c.send('40');
    const m1 = await c.next(1);
    assert.match(m1, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    assert.notEqual(JSON.parse(m1.slice(2)).sid, open.sid);
    c.send('40/admin,{"token":"abc"}');
    assert.match(await c.next(2), /^40\/admin,\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    c.send('40/random');
    assert.equal(await c.next(3), '44/random,{"message":"Invalid namespace"}');
    c.send('421["join-room","proto.room"]');
    assert.equal(await c.next(4), '431[{"ok":true,"roomId":"proto.room"}]');
    c.send('42/admin,7["whatever",1]'); // events on /admin are accepted (no handler)
    c.send('41/admin,');
    c.send('42/admin,["x"]'); // no longer connected to /admin: invalid state
    await c.closedWithin(2000);
  }));

  it('collects binary attachments and stays open; a bad placeholder closes', logs(async () => {
    const c = rawWs(srv);
    await c.next(0);
    c.send('40');
    await c.next(1);
    c.send('451-["some-event",{"_placeholder":true,"num":0}]');
    c.send(Buffer.from([1, 2, 3]));
    c.send('422["join-room","proto.bin"]');
    assert.equal(await c.next(2), '432[{"ok":true,"roomId":"proto.bin"}]');
    c.send('451-["some-event",{"_placeholder":true,"num":1}]');
    await c.closedWithin(2000);
  }));

  const rejects = [
    ['unknown Socket.IO type', ['4abc']],
    ['EVENT payload not an array', ['40', '42{}']],
    ['non-numeric ack id', ['40', '42abc["message-with-ack",1]']],
    ['empty EVENT array', ['40', '42[]']],
    ['reserved event name', ['40', '42["disconnect"]']],
    ['non-object CONNECT payload', ['40"abc"']],
    ['EVENT before CONNECT', ['42["message",1]']],
    ['CONNECT twice', ['40', '40']],
    ['binary frame with no pending attachment', ['40', Buffer.from([1])]],
    ['text while attachments are pending', ['40', '451-["e",{"_placeholder":true,"num":0}]', '42["e"]']],
    ['client ping', ['2']],
    ['unknown Engine.IO type', ['abc']],
    ['CONNECT_ERROR from the client', ['40', '44{"message":"x"}']],
  ];
  for (const [label, frames] of rejects) {
    it(`closes on ${label}`, logs(async () => {
      const c = rawWs(srv);
      await c.next(0);
      for (const f of frames) c.send(f);
      await c.closedWithin(800); // well before connectTimeout (1500 ms)
    }));
  }

  it('does not serve /debug unless STREAMIO_DEBUG_PAGE=1', logs(async () => {
    assert.equal((await get(srv, '/debug')).status, 404);
  }));

  it('closes a session that never connects a namespace after connectTimeout', logs(async () => {
    const c = rawWs(srv);
    await c.next(0);
    const t0 = Date.now();
    await c.closedWithin(4000);
    assert.ok(Date.now() - t0 >= 1300, `closed after ${Date.now() - t0} ms`);
  }));

  it('upgrades polling to WebSocket: 3probe, noop for the held GET, then 5', logs(async () => {
    const hs = await get(srv, '/socket.io/?EIO=4&transport=polling');
    const { sid } = JSON.parse(hs.body.slice(1));
    assert.match(sid, SID);
    const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const post = (body) => new Promise((resolve, reject) => {
      const req = http.request({ host: h.HOST, port: srv.port, path: q, method: 'POST', agent: false },
        (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(await post('40'), 200);
    assert.match((await get(srv, q)).body, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    await h.waitHeldPolls(srv, 0);
    const held = get(srv, q);
    await h.waitHeldPolls(srv, 1);
    const c = rawWs(srv, `&sid=${sid}`);
    await new Promise((resolve) => c.ws.once('open', resolve));
    c.send('2probe');
    assert.equal(await c.next(0), '3probe');
    assert.equal((await held).body, '6');
    c.send('5');
    c.send('421["join-room","proto.up"]');
    assert.equal(await c.next(1), '431[{"ok":true,"roomId":"proto.up"}]');
    const after = await get(srv, q);
    assert.equal(after.status, 400);
    assert.equal(after.body, '{"code":3,"message":"Bad request"}');
    // a second WebSocket for the same sid is accepted, then closed
    const dup = rawWs(srv, `&sid=${sid}`);
    await dup.closedWithin(2000);
    c.send('422["leave-room","proto.up"]');
    assert.equal(await c.next(2), '432[{"ok":true,"roomId":"proto.up"}]');
    c.ws.close();
  }));
});
