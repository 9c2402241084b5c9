'use strict';
// Entries read again from a pending list are not handed out twice (CLUSTER_WORKERS=2). Redis
// refuses XACK to streamio's user (an ACL) while entries are delivered, so they stay pending, as
// when a worker dies or a connection drops between the delivery and its XACK; XACK is then
// allowed again and the pending list is read again:
// - after every Redis connection of streamio is cut (CLIENT KILL): no client gets an entry twice;
// - after the worker reading the stream is killed with SIGKILL: its respawn reads them again and
//   the other worker's clients, which got them through it, do not get them twice;
// - the same with CONNECTION_RECOVERY: the killed worker's clients recover their sessions and
//   get each entry once too (their replay, not the re-read).
// The reader's ledger (shm/ledger.h) decides: streamio_reread_skipped_total counts, at the worker
// that read them again, the entries it did not hand to the other worker again.
// With a classic, sharded or streams adapter, a Node socket.io server (@socket.io/redis-adapter,
// @socket.io/redis-streams-adapter) shares the Redis and has clients in the room: after the cut and
// after the kill they get each entry once too (and in streams mode so do streamio's clients, which
// read the adapter's stream), since Redis had replied to each entry's PUBLISH / SPUBLISH / XADD
// before (counted in streamio_adapter_confirmed_total) and the re-read does not publish it again
// (streamio_reread_unpublished_total).
// Each run ends with one more entry, after everything else in its stream: once a client has it, a
// duplicate would have come before it. Real redis-server, streamio, the npm socket.io-client.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { metrics, series } = require('./lib/backend');
const { startPeer } = require('./lib/peer');

const USER = 'streamio-reread';
const PASS = 'reread-test-password';
const ENV = {
  CLUSTER_WORKERS: '2', REDIS_USERNAME: USER, REDIS_PASSWORD: PASS, DISCOVERY_INTERVAL: '500',
  // entries stay in the stream while pending (the delete policy would XDEL them), and no sweep
  // claims them meanwhile (a claim is always delivered)
  STREAM_DELETE_POLICY: 'retain', STREAM_CLAIM_IDLE_MS: '600000',
};
const N = 20;

// Clients (with `opts`) until both workers hold some; returns them.
async function spread(srv, opts) {
  await h.waitUntil(async () => {
    const ws = (await h.healthRetry(srv)).body.workers;
    return ws.length === 2 && ws.every((w) => w.redisConnected);
  }, { timeout: 15000, message: '2 workers up' });
  const sockets = [];
  for (let round = 0; round < 20; round++) {
    sockets.push(...(await h.connectClients(srv.url, 4, opts)));
    const { body } = await h.waitUntil(async () => {
      const r = await h.healthRetry(srv);
      return r.body.connectedClients === sockets.length ? r : null;
    }, { timeout: 10000, message: `/health to count ${sockets.length} clients` });
    if (body.workers.every((w) => w.connectedClients > 0)) return sockets;
  }
  assert.fail('both workers hold clients');
}

// A streamio server with `env` (2 workers) whose user Redis refuses XACK on demand, and the
// steps of a test on it; with `peer` (classic | sharded), a Node server in the same cluster.
function server(env, peer) {
  const t = { redis: null, srv: null, peer: null };
  before(async () => {
    t.redis = await h.startRedis();
    await t.redis.call('ACL', 'SETUSER', USER, 'on', `>${PASS}`, '~*', '&*', '+@all');
    t.srv = await h.startStreamio({ ...ENV, ...env }, { redis: t.redis });
    if (peer) t.peer = await startPeer(t.redis, peer);
  });
  after(() => t.peer && t.peer.stop()); // before the Redis it uses (hooks run in this order)
  t.logs = h.stopAfter(() => ({ srv: t.srv, redis: t.redis }));
  afterEach(() => h.closeAllClients()); // each test counts its own clients

  // A stream read by streamio, clients (with `opts`, spread over both workers) in its room, and
  // N entries delivered to all of them but left pending. Returns the ids, the clients (what each
  // received), the worker that read them and the workers as they were.
  t.pendingRun = async (prefix, opts = {}) => {
    const { redis, srv } = t;
    const room = h.uniq(prefix);
    const known = (await h.healthRetry(srv)).body.streams;
    const seed = await redis.call('XADD', room, '*', 'seed', '1');
    await redis.call('XDEL', room, seed);
    await h.waitUntil(async () => (await h.healthRetry(srv)).body.streams > known,
      { timeout: 15000, message: `${room} discovered` });
    const clients = [];
    const others = [];
    const join = async (s, list) => {
      const c = { s, got: [], drops: 0, warm: false };
      s.on('room:message', (p) => (p.event === 'warm' ? (c.warm = true) : c.got.push(p.messageId)));
      s.on('disconnect', () => { c.drops++; });
      await h.joinRoom(s, room);
      list.push(c);
    };
    for (const s of await spread(srv, opts)) await join(s, clients);
    if (t.peer) {
      for (const s of await h.connectClients(t.peer.url, 3)) await join(s, others);
      // the Node server's subscription is up once an entry reaches its clients (acknowledged)
      await h.waitUntil(async () => {
        if ([...clients, ...others].every((c) => c.warm)) return true;
        await redis.call('XADD', room, '*', 'event', 'warm', 'data', '{}');
        return false;
      }, { timeout: 20000, interval: 200, message: 'an entry on the Node server\'s clients' });
      await h.waitUntil(async () => Number((await redis.call('XPENDING', room, 'streamio'))[0]) === 0,
        { timeout: 15000, message: 'the warm-up entries acknowledged' });
    }
    const confirmed = t.peer ? await t.confirmed() : 0;
    await redis.call('ACL', 'SETUSER', USER, '-xack');
    const processed = new Map((await h.healthRetry(srv)).body.workers.map((w) => [w.pid, w.messagesProcessed]));
    const ids = [];
    for (let i = 0; i < N; i++) ids.push(await redis.call('XADD', room, '*', 'event', 'tick', 'data', `{"i":${i}}`));
    await h.waitUntil(() => [...clients, ...others].every((c) => c.got.length >= N),
      { timeout: 15000, message: `${N} entries on every client` });
    // Redis' replies to the N publishes came back and were noted
    if (t.peer) {
      await h.waitUntil(async () => (await t.confirmed()) - confirmed >= N,
        { timeout: 15000, message: `the replies to ${N} publishes noted` });
    }
    const pending = await redis.call('XPENDING', room, 'streamio');
    assert.equal(Number(pending[0]), N, 'every entry is pending: its XACK was refused');
    await redis.call('ACL', 'SETUSER', USER, '+xack');
    const workers = (await h.healthRetry(srv)).body.workers;
    const reader = workers.find((w) => w.messagesProcessed - (processed.get(w.pid) || 0) >= N);
    assert.ok(reader, 'the worker that read the entries');
    return { room, ids, clients, others, reader, workers };
  };

  // One worker's streamio_reread_skipped_total.
  t.skippedBy = async (w) => series(await metrics(t.srv.url),
    `streamio_reread_skipped_total{worker="${w.slot}",pid="${w.pid}"}`);
  // The server's streamio_adapter_confirmed_total and streamio_reread_unpublished_total.
  t.confirmed = async () => series(await metrics(t.srv.url), 'streamio_adapter_confirmed_total');
  t.unpublished = async () => series(await metrics(t.srv.url), 'streamio_reread_unpublished_total');

  // Read again and acknowledged; then a fence entry reaches `clients`, each of which has every
  // entry once, in order.
  t.checkOnce = async ({ room, ids }, clients) => {
    const { redis } = t;
    await h.waitUntil(async () => Number((await redis.call('XPENDING', room, 'streamio'))[0]) === 0,
      { timeout: 30000, message: `${room}'s pending list read again and acknowledged` });
    const fence = await redis.call('XADD', room, '*', 'event', 'fence', 'data', '{}');
    await h.waitUntil(() => clients.every((c) => c.got.includes(fence)),
      { timeout: 30000, message: 'the fence entry on every client' });
    for (const [k, c] of clients.entries()) assert.deepStrictEqual(c.got, [...ids, fence], `client ${k}: every entry once, in order`);
  };

  // The process that replaced the reader of run (killed): the worker not there before.
  t.respawn = async (run) => {
    const known = new Set(run.workers.map((w) => w.pid));
    const { body } = await h.waitUntil(async () => {
      const r = await h.healthRetry(t.srv);
      return r.body.workers.length === 2 && r.body.workers.some((w) => !known.has(w.pid)) ? r : null;
    }, { timeout: 15000, message: 'the killed worker respawned' });
    return body.workers.find((w) => !known.has(w.pid));
  };

  // Kills the worker that read run's entries; resolves once its clients dropped.
  t.killReader = async (run) => {
    h.killWorker(t.srv, run.reader.pid, 'SIGKILL');
    await h.waitUntil(() => run.clients.filter((c) => c.drops > 0).length === run.reader.connectedClients,
      { timeout: 15000, message: `the ${run.reader.connectedClients} clients of the killed worker dropped` });
  };
  return t;
}

describe('entries read again from a pending list', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  const t = server({});

  it('a client gets nothing twice after every Redis connection of streamio was cut', t.logs(async () => {
    const run = await t.pendingRun('reread.cut');
    const before = await Promise.all(run.workers.map(t.skippedBy));
    await t.redis.call('CLIENT', 'KILL', 'USER', USER);
    await t.checkOnce(run, run.clients);
    assert.ok(run.clients.every((c) => c.drops === 0), 'no client dropped');
    // the reader skipped each entry once, whatever the number of sockets; the other read none
    const after = await Promise.all(run.workers.map(t.skippedBy));
    const want = run.workers.map((w) => (w.pid === run.reader.pid ? N : 0));
    assert.deepStrictEqual(after.map((v, i) => v - before[i]), want, 're-read entries skipped by the reader');
  }));

  it('the other worker\'s clients get nothing twice after the reader was killed with SIGKILL', t.logs(async () => {
    const run = await t.pendingRun('reread.kill');
    const survivor = run.workers.find((w) => w.pid !== run.reader.pid);
    const before = await t.skippedBy(survivor);
    await t.killReader(run);
    const live = run.clients.filter((c) => c.drops === 0);
    assert.equal(live.length, survivor.connectedClients, 'the other worker\'s clients stayed');
    await t.checkOnce(run, live);
    // the respawned worker found the dead one's records: it handed none of them over again
    assert.equal(await t.skippedBy(await t.respawn(run)), N, 're-read entries skipped by the respawned worker');
    assert.equal(await t.skippedBy(survivor) - before, 0, 'the survivor read nothing again');
  }));
});

describe('entries read again from a pending list, with CONNECTION_RECOVERY', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  const t = server({ CONNECTION_RECOVERY: 'true' });

  it('every client gets each entry once after the reader was killed with SIGKILL', t.logs(async () => {
    const opts = { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0 };
    const run = await t.pendingRun('reread.recover', opts);
    await t.killReader(run);
    const dropped = run.clients.filter((c) => c.drops > 0);
    await h.waitUntil(() => dropped.every((c) => c.s.connected),
      { timeout: 30000, message: `the ${dropped.length} clients of the killed worker reconnected` });
    assert.ok(dropped.every((c) => c.s.recovered), 'their sessions recovered');
    await t.checkOnce(run, run.clients);
    assert.equal(await t.skippedBy(await t.respawn(run)), N, 're-read entries skipped by the respawned worker');
  }));
});

const ADAPTER = { classic: 'true', sharded: 'sharded', streams: 'streams' };
for (const mode of ['classic', 'sharded', 'streams']) {
  describe(`entries read again, with a Node server on the ${mode} adapter`, { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
    const t = server({ SOCKETIO_REDIS_ADAPTER: ADAPTER[mode] }, mode);

    it('every client of both servers gets each entry once after every Redis connection of streamio was cut', t.logs(async () => {
      const run = await t.pendingRun(`reread.${mode}.cut`);
      const before = await t.unpublished();
      await t.redis.call('CLIENT', 'KILL', 'USER', USER);
      await t.checkOnce(run, [...run.clients, ...run.others]);
      assert.ok(run.clients.every((c) => c.drops === 0), 'no client dropped');
      assert.equal(await t.unpublished() - before, N, 're-read entries not published again');
    }));

    it('the other worker\'s and the Node server\'s clients get each entry once after the reader was killed with SIGKILL', t.logs(async () => {
      const run = await t.pendingRun(`reread.${mode}.kill`);
      await t.killReader(run);
      const live = run.clients.filter((c) => c.drops === 0);
      await t.checkOnce(run, [...live, ...run.others]);
      // the respawned worker found the dead one's publish records
      const respawned = await t.respawn(run);
      assert.equal(series(await metrics(t.srv.url),
        `streamio_reread_unpublished_total{worker="${respawned.slot}",pid="${respawned.pid}"}`), N,
      're-read entries not published again by the respawned worker');
    }));
  });
}
