'use strict';
// Authentication: AUTH_JWT_SECRET turns it on; the HS256 token comes in the handshake's
// auth.token (or the `token` query parameter) and its `rooms` claim lists the rooms or globs
// the client may join. Tokens are signed here with node:crypto, as any backend would.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');
const { limitCounts } = require('./lib/rawnet');

const SECRET = 'test-secret-0123456789abcdef-0123456789';

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function sign(claims, secret = SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.createHmac('sha256', secret).update(body).digest();
  return `${body}.${b64url(sig)}`;
}

const now = () => Math.floor(Date.now() / 1000);

async function refusal(srv, opts) {
  const err = await h.connectClient(srv.url, opts).then(
    () => assert.fail('connected without a valid token'),
    (e) => e,
  );
  return err.message;
}

describe('authentication (AUTH_JWT_SECRET, CLUSTER_WORKERS=2)', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', AUTH_JWT_SECRET: SECRET }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('refuses a client without a token, with a forged one, and with an expired one', logs(async () => {
    const before = await limitCounts(srv);
    assert.match(await refusal(srv, {}), /Authentication required/);
    const forged = sign({ exp: now() + 60, rooms: ['*'] }, 'another-secret-0123456789abcdef-0123');
    assert.match(await refusal(srv, { auth: { token: forged } }), /Invalid token/);
    const expired = sign({ exp: now() - 60, rooms: ['*'] });
    assert.match(await refusal(srv, { auth: { token: expired } }), /Token expired/);
    const none = sign({ exp: now() + 60, rooms: ['*'] }, SECRET, { alg: 'none', typ: 'JWT' });
    assert.match(await refusal(srv, { auth: { token: none } }), /Invalid token/);
    // socket.io-client does not retry a CONNECT_ERROR: exactly one refusal each
    await h.waitUntil(async () => (await limitCounts(srv)).auth === before.auth + 4,
      { timeout: 5000, message: 'four auth refusals counted' });
  }));

  it('disconnects a connected socket when its token expires, over WebSocket and polling', logs(async () => {
    const before = await limitCounts(srv);
    const room = h.uniq('auth.expiring');
    const exp = now() + 3;
    const token = sign({ exp, rooms: [room] });
    const watch = async (opts) => {
      const s = await h.connectClient(srv.url, { auth: { token }, ...opts });
      const errors = h.collect(s, 'error');
      const gone = new Promise((resolve) => s.once('disconnect', (reason) => resolve({ reason, at: Date.now() })));
      assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room });
      return { s, errors, gone };
    };
    const ws = await watch({ transports: ['websocket'] });
    const poll = await watch({ transports: ['polling'] });
    const a = await h.withDeadline(ws.gone, 10000, 'the WebSocket client is disconnected');
    const b = await h.withDeadline(poll.gone, 10000, 'the polling client is disconnected');
    for (const { reason, at } of [a, b]) assert.ok(at >= exp * 1000, `not before exp (${at} < ${exp * 1000})`);
    assert.equal(a.reason, 'io server disconnect');
    assert.deepStrictEqual(ws.errors.items, [{ message: 'Token expired' }]);
    assert.deepStrictEqual(poll.errors.items, [{ message: 'Token expired' }]);
    assert.equal(ws.s.connected, false);
    await h.waitUntil(async () => (await limitCounts(srv)).token_expired === before.token_expired + 2,
      { timeout: 5000, message: 'two expiries counted' });
    // the expired token cannot come back
    assert.match(await refusal(srv, { auth: { token } }), /Token expired/);
  }));

  it('lets a client join only the rooms its token lists, and delivers them', logs(async () => {
    const ok = h.uniq('auth.user');
    const token = sign({ exp: now() + 600, rooms: [ok, 'news.*'] });
    const s = await h.connectClient(srv.url, { auth: { token } });
    const errors = h.collect(s, 'error');
    const inbox = h.collect(s);
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', ok), { ok: true, roomId: ok });
    const news = h.uniq('news.sports');
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', news), { ok: true, roomId: news });
    const other = h.uniq('auth.other');
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', other),
      { ok: false, error: 'Room not allowed' });
    assert.deepStrictEqual(await errors.waitCount(1), [{ message: 'Room not allowed' }]);

    await redis.call('XADD', other, '*', 'event', 'secret');
    const id = await redis.call('XADD', ok, '*', 'event', 'mine', 'data', '{"n":1}');
    const msg = await inbox.waitFor((m) => m.messageId === id);
    assert.deepStrictEqual(msg, {
      from: 'service', message: { event: 'mine', data: { n: 1 } }, roomId: ok, event: 'mine', messageId: id,
    });
    await h.waitUntil(async () => (await redis.call('XLEN', other)) === 0,
      { timeout: 8000, message: `${other} drained` });
    assert.ok(!inbox.items.some((m) => m.roomId === other), 'no entry of a refused room');
  }));

  it('treats an exp beyond any date (1e300) as far away, without disconnecting or crashing', logs(async () => {
    const room = h.uniq('auth.forever');
    const workers = (await h.healthRetry(srv)).body.workers.map((w) => w.pid).sort();
    const token = sign({ exp: 1e300, rooms: [room] });
    const s = await h.connectClient(srv.url, { auth: { token } });
    let gone = null;
    s.once('disconnect', (reason) => { gone = reason; });
    const inbox = h.collect(s);
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room });
    const id = await redis.call('XADD', room, '*', 'event', 'e', 'data', '{"n":1}');
    await inbox.waitFor((m) => m.messageId === id);
    assert.equal(gone, null, 'still connected after delivery');
    assert.ok(s.connected);
    assert.deepStrictEqual((await h.healthRetry(srv)).body.workers.map((w) => w.pid).sort(), workers);
  }));

  it('takes the token from the query string too, over long-polling', logs(async () => {
    const room = h.uniq('auth.query');
    const token = sign({ exp: now() + 600, rooms: room });
    const s = await h.connectClient(srv.url, { transports: ['polling'], query: { token } });
    assert.deepStrictEqual(await h.emitAck(s, 'join-room', room), { ok: true, roomId: room });
  }));
});
