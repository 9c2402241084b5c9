'use strict';
// Entries read again from a pending list are not delivered twice (CLUSTER_WORKERS=2). Redis
// refuses XACK to streamio's user (an ACL) while entries are delivered, so they stay pending, as
// when a worker dies or a connection drops between the delivery and its XACK; XACK is then
// allowed again and the pending list is read again:
// - after every Redis connection of streamio is cut (CLIENT KILL): no client gets an entry twice;
// - after the worker reading the stream is killed with SIGKILL: its respawn reads them again and
//   the other worker's clients, which got them through it, do not get them twice.
// Each run ends with one more entry, after everything else in its stream: once a client has it, a
// duplicate would have come before it. Real redis-server, streamio, the npm socket.io-client.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { metrics, series } = require('./lib/backend');

const USER = 'streamio-reread';
const PASS = 'reread-test-password';
const ENV = {
  CLUSTER_WORKERS: '2', REDIS_USERNAME: USER, REDIS_PASSWORD: PASS, DISCOVERY_INTERVAL: '500',
  // entries stay in the stream while pending (the delete policy would XDEL them), and no sweep
  // claims them meanwhile (a claim is always delivered)
  STREAM_DELETE_POLICY: 'retain', STREAM_CLAIM_IDLE_MS: '600000',
};
const N = 20;

describe('entries read again from a pending list', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  before(async () => {
    redis = await h.startRedis();
    await redis.call('ACL', 'SETUSER', USER, 'on', `>${PASS}`, '~*', '&*', '+@all');
    srv = await h.startStreamio(ENV, { redis });
  });
  const logs = h.stopAfter(() => ({ srv, redis }));

  // A stream read by streamio, `clients` (spread over both workers) in its room, and N entries
  // delivered to all of them but left pending. Returns what each client received, by client.
  async function pendingRun(prefix) {
    const room = h.uniq(prefix);
    const known = (await h.healthRetry(srv)).body.streams;
    const seed = await redis.call('XADD', room, '*', 'seed', '1');
    await redis.call('XDEL', room, seed);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.streams > known,
      { timeout: 15000, message: `${room} discovered` });
    const sockets = [];
    const body = await h.spreadClients(srv, sockets, { step: 4, min: 4 });
    assert.ok(body.workers.every((w) => w.connectedClients > 0), 'both workers hold clients');
    const clients = [];
    for (const s of sockets) {
      const c = { s, got: [], drops: 0 };
      s.on('room:message', (p) => c.got.push(p.messageId));
      s.on('disconnect', () => { c.drops++; });
      await h.joinRoom(s, room);
      clients.push(c);
    }
    await redis.call('ACL', 'SETUSER', USER, '-xack');
    const processed = new Map((await h.healthRetry(srv)).body.workers.map((w) => [w.pid, w.messagesProcessed]));
    const ids = [];
    for (let i = 0; i < N; i++) ids.push(await redis.call('XADD', room, '*', 'event', 'tick', 'data', `{"i":${i}}`));
    await h.waitUntil(() => clients.every((c) => c.got.length >= N),
      { timeout: 15000, message: `${N} entries on every client` });
    const pending = await redis.call('XPENDING', room, 'streamio');
    assert.equal(Number(pending[0]), N, 'every entry is pending: its XACK was refused');
    await redis.call('ACL', 'SETUSER', USER, '+xack');
    const workers = (await h.healthRetry(srv)).body.workers;
    const reader = workers.find((w) => w.messagesProcessed - (processed.get(w.pid) || 0) >= N);
    assert.ok(reader, 'the worker that read the entries');
    return { room, ids, clients, reader, workers };
  }

  // One worker's streamio_reread_skipped_total.
  async function skippedBy(w) {
    return series(await metrics(srv.url), `streamio_reread_skipped_total{worker="${w.slot}",pid="${w.pid}"}`);
  }

  // Read again and acknowledged; then a fence entry reaches every client still connected, each
  // of which has every entry once, in order.
  async function checkOnce({ room, ids, clients }) {
    await h.waitUntil(async () => Number((await redis.call('XPENDING', room, 'streamio'))[0]) === 0,
      { timeout: 30000, message: `${room}'s pending list read again and acknowledged` });
    const fence = await redis.call('XADD', room, '*', 'event', 'fence', 'data', '{}');
    const live = clients.filter((c) => c.drops === 0);
    await h.waitUntil(() => live.every((c) => c.got.includes(fence)),
      { timeout: 30000, message: 'the fence entry on every client' });
    for (const [k, c] of live.entries()) assert.deepStrictEqual(c.got, [...ids, fence], `client ${k}: every entry once, in order`);
    return live;
  }

  it('a client gets nothing twice after every Redis connection of streamio was cut', logs(async () => {
    const run = await pendingRun('reread.cut');
    const before = await Promise.all(run.workers.map(skippedBy));
    await redis.call('CLIENT', 'KILL', 'USER', USER);
    const live = await checkOnce(run);
    assert.equal(live.length, run.clients.length, 'no client dropped');
    // each worker's room skipped each entry once, whatever its number of sockets
    const after = await Promise.all(run.workers.map(skippedBy));
    assert.deepStrictEqual(after.map((v, i) => v - before[i]), [N, N], 're-read entries skipped by each worker');
    for (const c of run.clients) h.closeClient(c.s);
  }));

  it('the other worker\'s clients get nothing twice after the reader was killed with SIGKILL', logs(async () => {
    const run = await pendingRun('reread.kill');
    const survivor = run.workers.find((w) => w.pid !== run.reader.pid);
    const before = await skippedBy(survivor);
    h.killWorker(srv, run.reader.pid, 'SIGKILL');
    await h.waitUntil(() => run.clients.filter((c) => c.drops > 0).length === run.reader.connectedClients,
      { timeout: 15000, message: `the ${run.reader.connectedClients} clients of the killed worker dropped` });
    const live = await checkOnce(run);
    assert.equal(live.length, survivor.connectedClients, 'the other worker\'s clients stayed');
    // the respawned worker's rooms are new (nobody is in them): the survivor's room skipped them
    assert.equal(await skippedBy(survivor) - before, N, 're-read entries skipped by the survivor');
    for (const c of run.clients) h.closeClient(c.s);
  }));
});
