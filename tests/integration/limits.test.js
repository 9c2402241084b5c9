'use strict';
// Connection and rate limits: MAX_CONNECTIONS_PER_IP refuses the connection past the limit with
// a 503; RATE_LIMIT_* answer a flood with one `error` event, then disconnect a persistent abuser,
// while a well-behaved client on the same server keeps receiving.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

describe('limits (MAX_CONNECTIONS_PER_IP=3, RATE_LIMIT_EVENTS 5/s burst 5, 3 violations)', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      MAX_CONNECTIONS_PER_IP: '3',
      RATE_LIMIT_EVENTS_PER_SEC: '5',
      RATE_LIMIT_EVENTS_BURST: '5',
      RATE_LIMIT_MAX_VIOLATIONS: '3',
    }, { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  const logs = (fn) => h.withLogs(() => srv, fn);

  it('refuses a connection past the per-address limit and admits one once a slot frees', logs(async () => {
    const a = await h.connectClient(srv.url);
    await h.connectClient(srv.url);
    await h.connectClient(srv.url);
    await assert.rejects(h.connectClient(srv.url), /failed/);
    h.closeClient(a);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 2,
      { timeout: 5000, message: 'the closed client is gone' });
    const d = await h.connectClient(srv.url);
    assert.ok(d.connected);
    h.closeAllClients();
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.connectedClients === 0,
      { timeout: 5000, message: 'all clients gone' });
  }));

  it('answers a flood with one error, disconnects a persistent abuser, spares the others', logs(async () => {
    const room = h.uniq('limits.room');
    const good = await h.connectClient(srv.url);
    const inbox = h.collect(good);
    await h.joinRoom(good, room);
    const bad = await h.connectClient(srv.url);
    const errors = h.collect(bad, 'error');
    const gone = new Promise((resolve) => bad.once('disconnect', resolve));
    for (let i = 0; i < 40; i++) bad.emit('noise', i);
    const [first] = await errors.waitCount(1);
    assert.deepStrictEqual(first, { message: 'Rate limit exceeded' });
    await h.withDeadline(gone, 5000, 'the abuser is disconnected');
    assert.equal(errors.items.length, 1, 'one error per window, not one per packet');
    const id = await redis.call('XADD', room, '*', 'event', 'still-here');
    await inbox.waitFor((m) => m.messageId === id && m.roomId === room);
  }));
});
