'use strict';
// One reader per stream across servers (issue 13): streamio servers sharing a Redis and the
// adapter split the streams between them (master/discovery/ownership), so a room's entries reach
// every socket by one path, in stream order. Two servers on one Redis under a steady producer:
// every entry once per socket, in order, counted exactly; then the same under failover — a server
// joining and one stopping with SIGTERM (handed over in order, exactly once), and a kill -9
// (nothing lost; duplicates and late entries of the dead server's last batch counted).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ROOMS = 10;
const PER_ROOM = 300; // 3000 entries in all
const BATCH = 100; // MAX_MESSAGES_BATCH: the most one read leaves unacknowledged
const BUCKETS = 128; // OWNERSHIP_BUCKETS

describe('one reader per stream across servers', { timeout: 300000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  const { servers, server, stopAll, logs } = h.serverGroup(() => redis, {
    SOCKETIO_REDIS_ADAPTER: 'true', CLUSTER_WORKERS: '2', MAX_MESSAGES_BATCH: String(BATCH),
    STREAM_OWNER_TTL_MS: '3000', STREAM_CLAIM_IDLE_MS: '60000',
  });

  before(async () => {
    redis = await h.startRedis();
  });

  async function ownership(s) {
    const { body } = await h.healthRetry(s);
    return body.ownership || { servers: 0, buckets: 0 };
  }

  // Every server counts them all, and their buckets add up with none held twice.
  async function settledOwners(list) {
    await h.waitUntil(async () => {
      const o = await Promise.all(list.map(ownership));
      return o.every((x) => x.servers === list.length && x.buckets > 0) &&
        o.reduce((n, x) => n + x.buckets, 0) === BUCKETS;
    }, { timeout: 30000, interval: 100, message: `${list.length} servers share the ${BUCKETS} buckets` });
  }

  // One room per pair of sockets: one socket on each of `where` (round robin).
  async function clients(rooms, where) {
    const socks = [];
    for (let i = 0; i < rooms.length * 2; i++) {
      const srv = where[i % where.length];
      const [s] = await h.connectClients(srv.url, 1);
      const room = rooms[Math.floor(i / 2)];
      await h.joinRoom(s, room);
      socks.push({ room, srv, inbox: h.collect(s) });
    }
    return socks;
  }

  // XADD PER_ROOM entries to each room, data = sequence number, in steady rounds of one entry
  // per room (a bounded loop; `at(k)` runs after round k, for failovers under load).
  async function produce(rooms, tag, at = () => {}, add = null) {
    const xadd = (r, k) => redis.call('XADD', r, '*', 'event', tag, 'data', String(k));
    for (let k = 0; k < PER_ROOM; k++) {
      await Promise.all(rooms.map((r) => (add && add(r, k)) || xadd(r, k)));
      await at(k);
      await h.sleep(10); // about 50 rounds a second: failovers happen while entries flow
    }
  }

  // Every entry acknowledged and deleted, then a marker behind them in every room reached every
  // socket: with per-room order, nothing of `tag` is still on its way.
  async function drained(rooms, socks) {
    await h.waitUntil(async () => {
      for (const r of rooms) {
        if ((await redis.call('XLEN', r)) !== 0) return false;
        if ((await redis.call('XPENDING', r, 'streamio'))[0] !== 0) return false;
      }
      return true;
    }, { timeout: 60000, interval: 100, message: 'every entry acknowledged and deleted' });
    const marker = h.uniq('end');
    for (const r of rooms) await redis.call('XADD', r, '*', 'event', marker, 'data', '0');
    await Promise.all(socks.map((x) => x.inbox.waitFor((m) => m.event === marker, 60000)));
  }

  // What one socket got of `tag`: missing sequence numbers, duplicates, and entries whose first
  // delivery came after a later entry of the stream (out of order).
  function tally(x, tag) {
    const got = x.inbox.items.filter((m) => m.roomId === x.room && m.event === tag)
      .map((m) => Number(m.message.data));
    const seen = new Set();
    let dups = 0;
    let late = 0;
    let high = -1;
    for (const v of got) {
      if (seen.has(v)) {
        dups++;
        continue;
      }
      seen.add(v);
      if (v < high) late++;
      high = Math.max(high, v);
    }
    let missing = 0;
    for (let i = 0; i < PER_ROOM; i++) if (!seen.has(i)) missing++;
    return { got, missing, dups, late };
  }

  const inOrder = Array.from({ length: PER_ROOM }, (_, i) => i);

  it('two servers on one Redis, 20 clients in 10 rooms, 3000 entries: each once per socket, in order', logs(async () => {
    // the streams begin with the first entry, once the servers share the buckets: a group's
    // consumers then tell which servers read it
    const rooms = Array.from({ length: ROOMS }, () => h.uniq('own'));
    const a = await server();
    const b = await server();
    await settledOwners([a, b]);
    const socks = await clients(rooms, [a, b]);
    await produce(rooms, 'steady');
    await drained(rooms, socks);
    let wrong = 0;
    for (const x of socks) {
      const t = tally(x, 'steady');
      if (t.missing || t.dups || t.late) wrong++;
      assert.deepEqual(t.got, inOrder, `socket on ${x.srv.port} in ${x.room}: every entry once, in order`);
    }
    // each stream was read by one server only: its group has consumers (<host>:<PORT>:<slot>)
    // of one server
    const readBy = { [a.port]: 0, [b.port]: 0 };
    for (const r of rooms) {
      const ports = new Set((await redis.call('XINFO', 'CONSUMERS', r, 'streamio'))
        .map((c) => Number(String(c[1]).split(':').slice(-2)[0])));
      assert.equal(ports.size, 1, `${r} read by one server (${[...ports]})`);
      for (const p of ports) readBy[p]++;
    }
    const [oa, ob] = await Promise.all([ownership(a), ownership(b)]);
    process.stdout.write(`# two servers: ${ROOMS * PER_ROOM} entries to ${socks.length} sockets ` +
      `(${socks.length * PER_ROOM} deliveries), ${wrong} sockets with a wrong sequence; buckets ` +
      `A ${oa.buckets} B ${ob.buckets}; rooms read by A ${readBy[a.port]}, by B ${readBy[b.port]}\n`);
    await stopAll();
  }));

  it('two streamio servers on one Redis under failover: a server joins, one stops (SIGTERM): in order, once', logs(async () => {
    const rooms = Array.from({ length: ROOMS }, () => h.uniq('hand'));
    for (const r of rooms) await redis.call('XADD', r, '*', 'event', 'warmup', 'data', '-1');
    const a = await server();
    const b = await server();
    await settledOwners([a, b]);
    // the clients sit on B and on C (which joins later); A reads its share, then stops
    const socks = await clients(rooms, [b]);
    let c = null;
    let joined = null;
    let stopped = null;
    await produce(rooms, 'hand', async (k) => {
      if (k === 30) {
        joined = server().then((s) => {
          c = s;
        });
      }
      if (k === 200) {
        await joined;
        stopped = a.stop();
      }
    });
    assert.equal(await stopped, 0, 'A drained and exited 0');
    servers.splice(servers.indexOf(a), 1);
    await drained(rooms, socks);
    const oc = await ownership(c);
    const readC = (await h.healthRetry(c)).body.messagesProcessed;
    for (const x of socks) {
      assert.deepEqual(tally(x, 'hand').got, inOrder, `socket in ${x.room}: every entry once, in order`);
    }
    await settledOwners([b, c]);
    process.stdout.write(`# join + SIGTERM under load: ${ROOMS * PER_ROOM} entries to ` +
      `${socks.length} sockets, each once and in order; C read ${readC} entries and held ` +
      `${oc.buckets} buckets when done\n`);
    await stopAll();
  }));

  // The consumer of `room`'s group that read last (XINFO CONSUMERS: the least idle).
  async function lastReader(room) {
    const cs = (await redis.call('XINFO', 'CONSUMERS', room, 'streamio')).map((c) => {
      const o = {};
      for (let i = 0; i + 1 < c.length; i += 2) o[c[i]] = c[i + 1];
      return o;
    });
    cs.sort((x, y) => Number(x.idle) - Number(y.idle));
    return cs.length ? cs[0].name : null;
  }

  it('two streamio servers on one Redis under failover: kill -9 of one server loses nothing, in order', logs(async () => {
    const rooms = Array.from({ length: ROOMS }, () => h.uniq('kill'));
    for (const r of rooms) await redis.call('XADD', r, '*', 'event', 'warmup', 'data', '-1');
    // the dead server's pending entries are claimed by the next owner 2 s after they were read
    const env = { STREAM_CLAIM_IDLE_MS: '2000' };
    const a = await server(env);
    const b = await server(env);
    await settledOwners([a, b]);
    const socks = await clients(rooms, [b]);
    const { body } = await h.healthRetry(a);
    const workers = body.workers.map((w) => w.pid);
    // Entries A read but never delivered when it died: in A's rooms, three entries are added and
    // read as A's consumer in one script (A cannot read them in between), then A is killed.
    const victims = new Map(); // room -> A's consumer that reads it
    const taken = [];
    const TAKE = 'local id = redis.call("XADD", KEYS[1], "*", "event", ARGV[1], "data", ARGV[2]) ' +
      'local r = redis.call("XREADGROUP", "GROUP", "streamio", ARGV[3], "COUNT", "1", "STREAMS", KEYS[1], ">") ' +
      'return r[1][2][1][1]';
    const add = (r, k) => victims.has(r) && k > 100 && k <= 103 &&
      redis.call('EVAL', TAKE, '1', r, 'kill', String(k), victims.get(r)).then((id) => taken.push(id));
    await produce(rooms, 'kill', async (k) => {
      if (k === 100) {
        for (const r of rooms) {
          const who = await lastReader(r);
          if (who && Number(who.split(':').slice(-2)[0]) === a.port) victims.set(r, who);
        }
      }
      if (k === 103) {
        process.kill(a.pid, 'SIGKILL'); // its workers die with it (PR_SET_PDEATHSIG)
        await h.waitExit(a.handle, 10000);
        await h.waitUntil(() => workers.every((p) => !h.processAlive(p)),
          { timeout: 10000, message: "A's workers gone" });
      }
    }, add);
    servers.splice(servers.indexOf(a), 1);
    await drained(rooms, socks);
    let dups = 0;
    let late = 0;
    for (const x of socks) {
      const t = tally(x, 'kill');
      assert.equal(t.missing, 0, `socket in ${x.room}: nothing lost`);
      assert.ok(t.dups <= BATCH, `socket in ${x.room}: duplicates ${t.dups} within one batch`);
      // what A left pending is claimed by the next owner before it reads the stream
      assert.equal(t.late, 0, `socket in ${x.room}: every entry's first delivery in stream order`);
      dups += t.dups;
      late += t.late;
    }
    assert.equal(taken.length, victims.size * 3);
    const ob = await ownership(b);
    assert.equal(ob.buckets, BUCKETS, 'B took every bucket');
    process.stdout.write(`# kill -9 under load: ${ROOMS * PER_ROOM} entries to ${socks.length} ` +
      `sockets, lost 0, duplicates ${dups}, out of order ${late}; ${taken.length} entries left pending ` +
      `by the dead server were delivered first\n`);
    await stopAll();
  }));
});
