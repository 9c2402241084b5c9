'use strict';
// Nothing lost, nothing twice (issue 6): kill -9 of the reading worker during a fan-out of
// 10,000 entries, two servers on one Redis, entries left pending by a dead consumer (XAUTOCLAIM),
// a Redis restart with appendonly on, the retain policy, and parked (inactive) streams.
// Duplicates are counted and printed; only the unacknowledged batch may be delivered twice.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const prom = require('./lib/promtext');

const BATCH = 100; // MAX_MESSAGES_BATCH used below: the most one read can leave unacknowledged

// redis-server with appendonly on (fsync always) in `dir`, on `port`; same shape as startRedis.
async function startPersistentRedis(dir, port) {
  const handle = h.spawnTracked('redis-server', ['--port', String(port), '--bind', h.HOST,
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir,
    '--daemonize', 'no'], { name: `redis-server:${port}` });
  const client = await h.waitUntil(async () => {
    if (!handle.running) throw new Error(`redis-server exited\n${handle.describe()}`);
    try {
      const c = await h.RedisClient.connect(port, { timeout: 1000 });
      if ((await c.callTimeout(2000, 'PING')) === 'PONG') return c;
      c.close();
    } catch (err) {
      return null;
    }
    return null;
  }, { timeout: 10000, interval: 50, message: `redis-server on ${port}` });
  return {
    port, handle, client, call: (...a) => client.call(...a),
    async stop() {
      client.close();
      return h.stop(handle, 5000);
    },
  };
}

// Pipelined XADDs of `n` entries tagged `tag` (data = sequence number), in chunks.
async function addMany(redis, stream, tag, n, from = 0, chunk = 500) {
  for (let i = 0; i < n; i += chunk) {
    const k = Math.min(chunk, n - i);
    await Promise.all(Array.from({ length: k }, (_, j) => redis.call('XADD', stream, '*',
      'event', tag, 'data', String(from + i + j))));
  }
}

// Of one inbox, for sequence numbers [0, n) of `tag` in `room`: `missing` sequence numbers, and
// `dups`, entries (by id) received more than once. A writer that retried an XADD whose reply was
// lost may have added a sequence number twice, under two ids: that is not a duplicate delivery.
function tally(inbox, room, tag, n) {
  const seen = new Set();
  const ids = new Set();
  let dups = 0;
  for (const m of inbox.items) {
    if (m.roomId !== room || m.event !== tag) continue;
    seen.add(Number(m.message.data));
    if (ids.has(m.messageId)) dups++;
    ids.add(m.messageId);
  }
  let missing = 0;
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing++;
  return { missing, dups };
}

async function clientsIn(url, n, room) {
  const socks = await h.connectClients(url, n);
  await Promise.all(socks.map((s) => h.joinRoom(s, room)));
  return socks.map((s) => h.collect(s));
}

describe('nothing lost, nothing twice', { timeout: 240000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let aof = null; // the appendonly redis-server of the restart test, and its dir
  const common = {
    SOCKETIO_REDIS_ADAPTER: 'true', MAX_MESSAGES_BATCH: String(BATCH), STREAM_CLAIM_IDLE_MS: '1000',
  };
  const { servers, server, stopAll, logs } = h.serverGroup(() => redis, common);

  before(async () => {
    redis = await h.startRedis();
  });

  after(async () => {
    if (aof) {
      await aof.redis.stop();
      fs.rmSync(aof.dir, { recursive: true, force: true });
    }
  });

  // Every entry of `room` acknowledged and deleted: nothing more can be delivered from it.
  async function settled(room, on = redis) {
    await h.waitUntil(async () => (await on.call('XLEN', room)) === 0
      && (await on.call('XPENDING', room, 'streamio'))[0] === 0,
    { timeout: 15000, message: `every entry of ${room} acknowledged and deleted` });
  }

  it('kill -9 of the reading worker during a 10,000-entry fan-out: 0 lost', logs(async () => {
    const room = h.uniq('crash');
    await redis.call('XADD', room, '*', 'event', 'warmup', 'data', '-1');
    // A reads the stream (one worker: the victim); the clients sit on B and get it through the
    // adapter, so the kill never touches a client's connection.
    const a = await server({ CLUSTER_WORKERS: '1' });
    const b = await server({ CLUSTER_WORKERS: '1', STREAM_PATTERN: 'nomatch.*' });
    const inboxes = await clientsIn(b.url, 4, room);
    await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0,
      { timeout: 10000, message: 'A reads the stream' });
    const N = 10000;
    const writing = addMany(redis, room, 'crash', N, 0, 200);
    await h.waitUntil(() => inboxes[0].items.length > 2000, { timeout: 20000, interval: 5,
      message: 'fan-out under way' });
    const { body } = await h.healthRetry(a);
    h.killWorker(a, body.workers[0].pid, 'SIGKILL');
    await writing;
    await h.waitUntil(() => inboxes.every((b2) => tally(b2, room, 'crash', N).missing === 0),
      { timeout: 60000, interval: 200, message: 'every entry delivered after the respawn' });
    await settled(room); // no entry is left to deliver, again or at all
    const t = inboxes.map((b2) => tally(b2, room, 'crash', N));
    process.stdout.write(`# kill -9 fan-out: ${N} entries, lost ${t.map((x) => x.missing)}, ` +
      `duplicates ${t.map((x) => x.dups)} (bound ${BATCH})\n`);
    for (const x of t) {
      assert.equal(x.missing, 0);
      assert.ok(x.dups <= BATCH, `duplicates ${x.dups} <= one unacknowledged batch`);
    }
    await stopAll();
  }));

  it('two servers on one Redis: each entry once per socket, each stream read by one server', logs(async () => {
    const rooms = [h.uniq('two'), h.uniq('two'), h.uniq('two'), h.uniq('two')];
    // Neither server dies here: a claim would only re-deliver what a slow (loaded, sanitized)
    // server has in hand, so claims wait longer than any such delay.
    const a = await server({ CLUSTER_WORKERS: '2', STREAM_CLAIM_IDLE_MS: '60000' });
    const b = await server({ CLUSTER_WORKERS: '2', STREAM_CLAIM_IDLE_MS: '60000' });
    const ia = [];
    const ib = [];
    for (const r of rooms) {
      ia.push(...(await clientsIn(a.url, 2, r)).map((x) => [r, x]));
      ib.push(...(await clientsIn(b.url, 2, r)).map((x) => [r, x]));
    }
    // the servers split the streams' buckets between them (master/discovery/ownership): each
    // stream is read by one of them, and its entries reach the other's sockets by the adapter
    await h.waitUntil(async () => {
      const [oa, ob] = await Promise.all([a, b].map(async (s) => (await h.healthRetry(s)).body.ownership));
      return oa && ob && oa.servers === 2 && ob.servers === 2 && oa.buckets > 0 && ob.buckets > 0 &&
        oa.buckets + ob.buckets === 128;
    }, { timeout: 20000, message: 'both servers hold a share of the streams' });
    const N = 1000;
    await Promise.all(rooms.map((r) => addMany(redis, r, 'two', N)));
    const all = [...ia, ...ib];
    await h.waitUntil(() => all.every(([r, x]) => tally(x, r, 'two', N).missing === 0),
      { timeout: 30000, interval: 100, message: 'every socket got every entry' });
    for (const r of rooms) await settled(r);
    let dups = 0;
    for (const [r, x] of all) dups += tally(x, r, 'two', N).dups;
    // the streams began once the servers shared the buckets: one server's consumers in each group
    for (const r of rooms) {
      const ports = new Set((await redis.call('XINFO', 'CONSUMERS', r, 'streamio'))
        .map((c) => String(c[1]).split(':').slice(-2)[0]));
      assert.equal(ports.size, 1, `${r} is read by one server`);
    }
    const ha = (await h.healthRetry(a)).body.messagesProcessed;
    const hb = (await h.healthRetry(b)).body.messagesProcessed;
    process.stdout.write(`# two servers: ${rooms.length * N} entries, A read ${ha}, B read ${hb}, ` +
      `duplicates ${dups}\n`);
    assert.equal(dups, 0);
    assert.equal(ha + hb, rooms.length * N, 'every entry read once');
    await stopAll();
  }));

  it('entries a dead consumer left pending are claimed and delivered', logs(async () => {
    const room = h.uniq('claim');
    await redis.call('XGROUP', 'CREATE', room, 'streamio', '0', 'MKSTREAM');
    for (let i = 0; i < 50; i++) await redis.call('XADD', room, '*', 'event', 'claim', 'data', String(i));
    // a consumer of a server that died after reading: the entries stay pending under its name
    await redis.call('XREADGROUP', 'GROUP', 'streamio', 'ghost:1:0', 'COUNT', '1000', 'STREAMS', room, '>');
    const a = await server({ CLUSTER_WORKERS: '1' });
    const [inbox] = await clientsIn(a.url, 1, room);
    await h.waitUntil(() => tally(inbox, room, 'claim', 50).missing === 0,
      { timeout: 15000, interval: 100, message: 'claimed entries delivered' });
    assert.equal(tally(inbox, room, 'claim', 50).dups, 0);
    const pending = await redis.call('XPENDING', room, 'streamio');
    assert.equal(pending[0], 0);
    await stopAll();
  }));

  it('retain policy: entries are acknowledged, kept for STREAM_RETAIN_MS, then trimmed', logs(async () => {
    const room = h.uniq('retain');
    await redis.call('XADD', room, '*', 'event', 'warmup', 'data', '-1');
    const a = await server({ CLUSTER_WORKERS: '1', STREAM_DELETE_POLICY: 'retain', STREAM_RETAIN_MS: '1500' });
    const [inbox] = await clientsIn(a.url, 1, room);
    await addMany(redis, room, 'retain', 20);
    await inbox.waitFor((m) => m.event === 'retain' && m.message.data === 19, 10000);
    assert.ok((await redis.call('XLEN', room)) >= 20, 'delivered entries are kept');
    // the XACK follows the delivery on the reader's connection: wait for it, not for a guess
    await h.waitUntil(async () => (await redis.call('XPENDING', room, 'streamio'))[0] === 0,
      { timeout: 10000, interval: 50, message: 'every delivered entry acknowledged' });
    await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0,
      { timeout: 10000, interval: 200, message: 'entries older than the window trimmed' });
    assert.equal(tally(inbox, room, 'retain', 20).dups, 0);
    await stopAll();
  }));

  // The server totals of the parked-stream gauge and of the two wake-up paths.
  async function parking(srv) {
    const m = prom.parse(await (await fetch(`${srv.url}/metrics`)).text());
    return {
      parked: prom.value(m, 'streamio_parked_streams'),
      polled: prom.value(m, 'streamio_stream_wakeups_polled_total'),
      event: prom.value(m, 'streamio_stream_wakeups_event_total'),
    };
  }

  const parkedCase = (events) => logs(async () => {
    if (events) await redis.call('CONFIG', 'SET', 'notify-keyspace-events', 'Et');
    // this case's streams only: the other tests' streams are still in Redis
    const prefix = `parked${events ? 'ev' : 'poll'}`;
    const old = h.uniq(`${prefix}.old`);
    // last entry 2 h ago: parked from the start
    const t0 = Date.now() - 2 * 3600 * 1000;
    await redis.call('XADD', old, `${t0}-0`, 'event', 'old', 'data', '0');
    const fresh = h.uniq(`${prefix}.fresh`);
    await redis.call('XADD', fresh, '*', 'event', 'created', 'data', '-2');
    const a = await server({ CLUSTER_WORKERS: '1', STREAM_INACTIVE_TTL: '1000',
      STREAM_KEYSPACE_EVENTS: String(events), STREAM_PATTERN: `${prefix}.*` });
    const [io] = await clientsIn(a.url, 1, old);
    const [fi] = await clientsIn(a.url, 1, fresh);
    // Both streams handed to the worker (with an adapter, once this server holds their
    // buckets' leases): from here an entry reaches `fresh` whether its first probe found it
    // active or parked it (`created` may be older than the TTL by then on a busy box).
    await h.waitUntil(async () => (await h.healthRetry(a)).body.workers[0].streams === 2,
      { timeout: 20000, interval: 100, message: 'both streams handed to the worker' });
    await redis.call('XADD', fresh, '*', 'event', 'warmup', 'data', '-1');
    // `old` parked from its first probe; `fresh` once it has been quiet past the TTL
    await fi.waitFor((m) => m.event === 'warmup', 10000);
    const before = await h.waitUntil(async () => {
      const p = await parking(a);
      return p.parked === 2 ? p : null;
    }, { timeout: 10000, interval: 100, message: 'both streams parked' });
    if (events) {
      // key events on: a new stream is not probed but read once from the start, so its
      // undelivered entry goes out at once however old; quiet afterwards, it is parked
      await io.waitFor((m) => m.event === 'old', 10000);
    } else {
      assert.ok(!io.items.some((m) => m.event === 'old'), 'a parked stream is not read');
    }
    const at = Date.now();
    await redis.call('XADD', old, '*', 'event', 'wake', 'data', '1');
    await redis.call('XADD', fresh, '*', 'event', 'wake', 'data', '1');
    await io.waitFor((m) => m.event === 'wake', 10000);
    await fi.waitFor((m) => m.event === 'wake', 10000);
    const took = Date.now() - at;
    const after = await parking(a); // counted when woken, before the entries are read
    const polled = after.polled - before.polled;
    const event = after.event - before.event;
    process.stdout.write(`# parked streams woke up in ${took} ms (keyspace events ${events}: ` +
      `${event} by event, ${polled} by poll)\n`);
    if (events) {
      // an xadd event wakes a stream at once; the slow safety-net poll may just beat it
      assert.ok(event >= 1, `woken by the keyspace event (${event} by event, ${polled} by poll)`);
      assert.equal(event + polled, 2);
    } else {
      assert.deepStrictEqual({ polled, event }, { polled: 2, event: 0 });
    }
    // the old entry is delivered too (group created at 0 when the stream became active)
    assert.ok(io.items.some((m) => m.event === 'old'));
    await stopAll();
    if (events) await redis.call('CONFIG', 'SET', 'notify-keyspace-events', '');
  });

  it('a stream idle past STREAM_INACTIVE_TTL is parked and a poll wakes it with its next entry',
    parkedCase(false));
  it('STREAM_KEYSPACE_EVENTS=true: a parked stream wakes up on its xadd event', parkedCase(true));

  it('Redis restart (appendonly on) mid-run: clients stay connected, 0 lost', logs(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-it-aof-'));
    const port = await h.freePort();
    let pr = await startPersistentRedis(dir, port);
    aof = { redis: pr, dir };
    const room = h.uniq('restart');
    await pr.call('XADD', room, '*', 'event', 'warmup', 'data', '-1');
    // One worker: an entry published to the other workers' pub/sub in the instant Redis goes
    // down can miss them (pub/sub keeps nothing); connection state recovery covers that case.
    const a = await h.startStreamio({ ...common, CLUSTER_WORKERS: '1', REDIS_PORT: String(port) });
    servers.push(a);
    const socks = await h.connectClients(a.url, 6);
    await Promise.all(socks.map((s) => h.joinRoom(s, room)));
    const inboxes = socks.map((s) => h.collect(s));
    let disconnects = 0;
    socks.forEach((s) => s.on('disconnect', () => { disconnects++; }));
    await settled(room, pr); // the warm-up entry is read: the stream is being read
    const N = 3000;
    let next = 0;
    let stopWriter = false;
    // one writer with its own connection, retrying each entry until Redis confirms it
    const writer = (async () => {
      let c = null;
      const deadline = Date.now() + 60000;
      while (next < N && !stopWriter && Date.now() < deadline) {
        try {
          if (!c) c = await h.RedisClient.connect(port, { timeout: 500 });
          await c.callTimeout(2000, 'XADD', room, '*', 'event', 'restart', 'data', String(next));
          next++;
          if (next % 20 === 0) await h.sleep(5);
        } catch (err) {
          if (c) c.close();
          c = null;
          await h.sleep(50);
        }
      }
      if (c) c.close();
    })();
    await h.waitUntil(() => next > N / 3, { timeout: 20000, interval: 10, message: 'writes under way' });
    await pr.stop(); // SIGTERM: redis-server shuts down (AOF fsynced on every write)
    await h.sleep(1000); // the outage itself: one second without Redis
    pr = await startPersistentRedis(dir, port);
    aof.redis = pr;
    await writer;
    stopWriter = true;
    assert.equal(next, N, 'the writer finished');
    await h.waitUntil(() => inboxes.every((b) => tally(b, room, 'restart', N).missing === 0),
      { timeout: 30000, interval: 200, message: 'every entry delivered after the restart' });
    await settled(room, pr);
    const t = inboxes.map((b) => tally(b, room, 'restart', N));
    process.stdout.write(`# redis restart: ${N} entries, lost ${t.map((x) => x.missing)}, ` +
      `duplicates ${t.map((x) => x.dups)}, client disconnects ${disconnects}\n`);
    assert.equal(disconnects, 0, 'clients stay connected');
    for (const x of t) {
      assert.equal(x.missing, 0);
      assert.ok(x.dups <= BATCH, `duplicates ${x.dups} <= one unacknowledged batch`);
    }
    await stopAll();
  }));
});
