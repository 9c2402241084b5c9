'use strict';
// Engine.IO long-polling and the upgrade to WebSocket, with real socket.io-client sockets and raw
// HTTP (protocol.md §1.5-§1.8): handshake bytes, batching, error answers, overlapping GETs, 413.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');

// One HTTP request on a fresh connection; resolves {status, headers, body}.
function request(srv, method, path, { body, headers = {}, timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h.HOST, port: srv.port, method, path, agent: false, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
          body: Buffer.concat(chunks).toString() }));
      });
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const EIO = '/socket.io/?EIO=4&transport=polling';

async function handshake(srv) {
  const r = await request(srv, 'GET', EIO);
  assert.equal(r.status, 200);
  assert.equal(r.body[0], '0');
  return JSON.parse(r.body.slice(1));
}

async function deliver(redis, inbox, room) {
  let id;
  await h.waitUntil(async () => {
    id = await redis.call('XADD', room, '*', 'event', 'poll', 'data', '{"n":1}');
    try {
      return await inbox.waitFor((m) => m.messageId === id, 700);
    } catch {
      return null;
    }
  }, { timeout: 10000, message: `room:message in ${room}` });
  return id;
}

for (const workers of ['1', '2']) {
  describe(`long-polling and upgrade (CLUSTER_WORKERS=${workers})`, { timeout: 120000 }, () => {
    let redis;
    let srv;

    before(async () => {
      redis = await h.startRedis();
      srv = await h.startStreamio({ CLUSTER_WORKERS: workers, DISCOVERY_INTERVAL: '300',
        SOCKETIO_NAMESPACES: '/,/admin', SOCKETIO_CORS_ORIGINS: 'http://example.test' }, { redis });
    });

    const logs = h.stopAfter(() => ({ srv, redis }));

    it('default client options: polling, then upgraded to websocket, receives room:message',
      logs(async () => {
        const s = await h.connectClient(srv.url, { transports: ['polling', 'websocket'] });
        await h.waitUntil(() => s.io.engine.transport.name === 'websocket',
          { timeout: 5000, message: 'upgrade to websocket' });
        const room = h.uniq('poll.upgrade');
        await h.joinRoom(s, room);
        await deliver(redis, h.collect(s), room);
        h.closeClient(s);
      }));

    it("transports:['polling'] joins a room, gets acks and room:message", logs(async () => {
      const s = await h.connectClient(srv.url, { transports: ['polling'] });
      assert.equal(s.io.engine.transport.name, 'polling');
      const room = h.uniq('poll.only');
      assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room });
      const inbox = h.collect(s);
      await deliver(redis, inbox, room);
      assert.deepStrictEqual(await h.emitAck(s, 'leave-room', room), { ok: true, roomId: room });
      // its next GET is parked by the server: still polling after the acks, never upgraded
      await h.waitHeldPolls(srv, 1);
      assert.equal(s.io.engine.transport.name, 'polling');
      assert.ok(s.connected);
      h.closeClient(s);
    }));

    it('many polling clients stay connected and all receive a room broadcast', logs(async () => {
      const clients = await h.connectClients(srv.url, 100, { transports: ['polling'] });
      const room = h.uniq('poll.many');
      await Promise.all(clients.map((s) => h.joinRoom(s, room)));
      const inboxes = clients.map((s) => h.collect(s));
      const id = await deliver(redis, inboxes[0], room);
      await Promise.all(inboxes.map((b) => b.waitFor((m) => m.messageId === id, 5000)));
      for (const s of clients) h.closeClient(s);
    }));

    it('serves configured namespaces and refuses unknown ones', logs(async () => {
      const a = await h.connectClient(`${srv.url}/admin`, { transports: ['polling'], auth: { t: 1 } });
      assert.ok(a.connected);
      await assert.rejects(h.connectClient(`${srv.url}/nope`, { transports: ['polling'] }),
        /Invalid namespace/);
      h.closeClient(a);
    }));

    it('answers the handshake and the exact error bodies', logs(async () => {
      const r = await request(srv, 'GET', EIO);
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/plain/);
      const open = JSON.parse(r.body.slice(1));
      assert.deepStrictEqual(Object.keys(open), ['sid', 'upgrades', 'pingInterval', 'pingTimeout',
        'maxPayload']);
      assert.deepStrictEqual(open.upgrades, ['websocket']);
      assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
      const cases = [
        ['GET', '/socket.io/?EIO=3&transport=polling', 5, 'Unsupported protocol version'],
        ['GET', '/socket.io/?transport=polling', 5, 'Unsupported protocol version'],
        ['GET', '/socket.io/?EIO=4&transport=abc', 0, 'Transport unknown'],
        ['GET', '/socket.io/?EIO=4', 0, 'Transport unknown'],
        ['GET', `${EIO}&sid=nope`, 1, 'Session ID unknown'],
        ['POST', EIO, 2, 'Bad handshake method'],
        ['GET', '/socket.io/?EIO=4&transport=websocket', 3, 'Bad request'],
      ];
      for (const [method, path, code, message] of cases) {
        const e = await request(srv, method, path, { body: method === 'POST' ? '40' : undefined });
        assert.equal(e.status, 400, `${method} ${path}`);
        assert.equal(e.body, JSON.stringify({ code, message }), `${method} ${path}`);
      }
    }));

    it('batches with \\x1e, closes on overlapping GETs, refuses bodies over maxPayload',
      logs(async () => {
        const { sid } = await handshake(srv);
        const q = `${EIO}&sid=${sid}`;
        // answered once its records were handled: the CONNECT's answer and the ack are queued
        let r = await request(srv, 'POST', q, { body: '40\x1e42["join-room","x"]' });
        assert.deepStrictEqual([r.status, r.body], [200, 'ok']);
        r = await request(srv, 'GET', q);
        const recs = r.body.split('\x1e');
        assert.match(recs[0], /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
        assert.ok(!recs.slice(1).length || recs.slice(1).every((x) => x.startsWith('4')));
        await h.waitHeldPolls(srv, 0); // what earlier tests' clients held is over
        const held = request(srv, 'GET', q);
        await h.waitHeldPolls(srv, 1);
        const second = await request(srv, 'GET', q);
        assert.equal(second.status, 400);
        assert.equal((await held).body, '1');
        r = await request(srv, 'GET', q);
        assert.equal(r.status, 400);

        const { sid: sid2 } = await handshake(srv);
        r = await request(srv, 'POST', `${EIO}&sid=${sid2}`, { body: `4${'x'.repeat(1000001)}` });
        assert.equal(r.status, 413);
      }));

    it('client close over polling answers the held GET with a noop', logs(async () => {
      const { sid } = await handshake(srv);
      const q = `${EIO}&sid=${sid}`;
      await h.waitHeldPolls(srv, 0);
      const held = request(srv, 'GET', q);
      await h.waitHeldPolls(srv, 1);
      const r = await request(srv, 'POST', q, { body: '1' });
      assert.equal(r.status, 200);
      assert.equal((await held).body, '6');
      assert.equal((await request(srv, 'GET', q)).status, 400);
    }));

    it('closes the session on a bad packet and on bad base64', logs(async () => {
      for (const body of ['abc', '40\x1ebA', '']) {
        const { sid } = await handshake(srv);
        const q = `${EIO}&sid=${sid}`;
        const r = await request(srv, 'POST', q, { body });
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal((await request(srv, 'GET', q)).status, 400);
      }
    }));

    it('gzips polling responses of 1024 bytes or more when the client accepts gzip',
      logs(async () => {
        const { sid } = await handshake(srv);
        const q = `${EIO}&sid=${sid}`;
        const room = 'r'.repeat(500);
        const body = ['40', ...[1, 2, 3].map((i) => `42${i}["join-room","${room}${i}"]`)].join('\x1e');
        // answered once its records were handled: the CONNECT's answer and the acks are queued
        assert.equal((await request(srv, 'POST', q, { body })).status, 200);
        const r = await new Promise((resolve, reject) => {
          http.get({ host: h.HOST, port: srv.port, path: q, agent: false,
            headers: { 'Accept-Encoding': 'gzip, deflate' } }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, raw: Buffer.concat(chunks) }));
          }).on('error', reject);
        });
        assert.equal(r.headers['content-encoding'], 'gzip');
        const text = require('node:zlib').gunzipSync(r.raw).toString();
        const recs = text.split('\x1e');
        assert.equal(recs.length, 4);
        assert.equal(recs[3], `433[{"ok":true,"roomId":"${room}3"}]`);
        const small = await request(srv, 'GET', `${EIO}`, { headers: { 'Accept-Encoding': 'gzip' } });
        assert.equal(small.headers['content-encoding'], undefined);
      }));

    it('sends CORS headers to allowed origins only', logs(async () => {
      let r = await request(srv, 'GET', EIO, { headers: { Origin: 'http://example.test' } });
      assert.equal(r.headers['access-control-allow-origin'], 'http://example.test');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      r = await request(srv, 'GET', EIO, { headers: { Origin: 'http://evil.test' } });
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      r = await request(srv, 'OPTIONS', EIO, { headers: { Origin: 'http://example.test' } });
      assert.equal(r.status, 204);
      assert.match(r.headers['access-control-allow-methods'], /POST/);
    }));
  });
}

// After a SIGHUP reload the workers run in other process blocks of the shared region, and a sid
// names its block (up to twice CLUSTER_WORKERS), not the worker number: requests that land on the
// other worker must still be handed to the owner, never answered "Session ID unknown".
describe('long-polling across workers after a SIGHUP reload (CLUSTER_WORKERS=2)', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, { redis });
    process.kill(srv.pid, 'SIGHUP');
    await h.waitUntil(() => /reload complete: generation 2, 2 workers/.test(srv.handle.output()),
      { timeout: 30000, message: 'the reload to complete' });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const blockOf = (sid) => DIGITS.indexOf(sid[0]) * 64 + DIGITS.indexOf(sid[1]);

  it('serves every request of every session, whichever worker accepts it', logs(async () => {
    // which worker accepts a connection is the kernel's choice: on a busy box one may take many
    // in a row, so open sessions until both workers hold some (bounded)
    const opened = [];
    for (let i = 0; i < 300 && (opened.length < 10 || new Set(opened.map(blockOf)).size < 2); i++) {
      opened.push((await handshake(srv)).sid);
    }
    // ten of them, at least one of each worker's
    const firsts = [...new Map(opened.map((sid) => [blockOf(sid), sid])).values()];
    const sessions = [...firsts, ...opened.filter((sid) => !firsts.includes(sid))].slice(0, 10);
    const blocks = sessions.map(blockOf);
    assert.ok(blocks.some((b) => b >= 2), `a worker runs in a block past CLUSTER_WORKERS: ${blocks}`);
    assert.equal(new Set(blocks).size, 2, `both workers hold sessions: ${blocks}`);
    const poll = (sid, method, body) => request(srv, method, `${EIO}&sid=${sid}`, { body, timeout: 10000 });
    // every request on a fresh connection: the kernel picks the accepting worker
    for (const sid of sessions) {
      assert.equal((await poll(sid, 'POST', '40')).body, 'ok');
      assert.match((await poll(sid, 'GET')).body, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
      for (let n = 1; n <= 3; n++) {
        const room = h.uniq('poll.reload');
        const post = await poll(sid, 'POST', `42${n}["join-room","${room}"]`);
        assert.equal(post.status, 200, post.body);
        assert.equal(post.body, 'ok');
        const get = await poll(sid, 'GET');
        assert.equal(get.status, 200, get.body);
        assert.equal(get.body, `43${n}[{"ok":true,"roomId":"${room}"}]`);
      }
    }
  }));
});
