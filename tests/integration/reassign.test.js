'use strict';
// Pools through worker changes: CLUSTER_WORKERS changed by SIGHUP (STREAMIO_ENV_FILE) and a
// killed worker. Who reads a stream is read from Redis itself: each worker is consumer
// `<host>:<PORT>:<slot>` of the group, and XINFO CONSUMERS gives, per stream, each consumer's
// idle time since it was last served an entry of that stream (or claimed one). After one entry per
// stream is written and drained, the consumers idle for less than FRESH_MS are the ones reading
// it: over a few such rounds, exactly one consumer per stream means read by one worker, never by
// none (the entry would stay) nor by two (they would share the entries).
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-reassign-'));
const FRESH_MS = 1500;

function healthUntil(srv, pred, message, timeout = 20000) {
  return h.waitUntil(async () => {
    const r = await h.healthRetry(srv, { attempts: 3 });
    return pred(r.body) ? r.body : null;
  }, { timeout, interval: 100, message });
}

describe('pool reassignment (POOL_SIZE=2, READ_BLOCK_MS=200)', { timeout: 240000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const env = path.join(tmp, 'reassign.env');
  const streams = Array.from({ length: 12 }, (_, i) => h.uniq(`ra.s${i}`));
  let owners0 = null;

  // one entry per stream; resolves when every stream is drained and nothing is pending
  async function writeAndDrain(list, tag) {
    for (const st of list) await redis.call('XADD', st, '*', 'event', tag, 'data', '1');
    await h.waitUntil(async () => {
      for (const st of list) {
        if (Number(await redis.call('XLEN', st)) !== 0) return false;
        if (Number((await redis.call('XPENDING', st, 'streamio'))[0]) !== 0) return false;
      }
      return true;
    }, { timeout: 20000, interval: 100, message: `every '${tag}' entry read and acknowledged` });
  }

  // slots of the consumers served an entry of `stream` in the last FRESH_MS
  async function freshReaders(stream) {
    const cs = await redis.call('XINFO', 'CONSUMERS', stream, 'streamio');
    return cs.filter((c) => Number(c[5]) < FRESH_MS).map((c) => Number(c[1].split(':').pop()));
  }

  // Waits until each stream's entries go to one consumer only, then checks over 3 more rounds
  // that they all go to that same one. Returns stream -> slot.
  async function readers(list, slots) {
    const owners = new Map();
    await h.waitUntil(async () => {
      await writeAndDrain(list, 'probe');
      for (const st of list) {
        const f = await freshReaders(st);
        if (f.length !== 1 || !slots.includes(f[0])) return false;
        owners.set(st, f[0]);
      }
      return true;
    }, { timeout: 30000, interval: 200, message: `one reader per stream among slots ${slots}` });
    const seen = new Map(list.map((st) => [st, new Set()]));
    for (let round = 0; round < 3; round++) {
      await writeAndDrain(list, 'probe');
      for (const st of list) for (const slot of await freshReaders(st)) seen.get(st).add(slot);
    }
    for (const st of list) assert.deepStrictEqual([...seen.get(st)], [owners.get(st)], `${st}: one reader`);
    return owners;
  }

  async function reload(workers, generation) {
    fs.writeFileSync(env, `CLUSTER_WORKERS=${workers}\n`);
    process.kill(srv.pid, 'SIGHUP');
    await h.waitUntil(() => srv.handle.output().includes(`reload complete: generation ${generation}, ${workers} workers`),
      { timeout: 60000, message: `reload to ${workers} workers` });
    return healthUntil(srv, (b) => b.workers.length === workers && b.workersAlive === workers,
      `${workers} workers alive`);
  }

  before(async () => {
    redis = await h.startRedis();
    for (const s of streams) await redis.call('XADD', s, '*', 'event', 'seed', 'data', '0');
    fs.writeFileSync(env, 'CLUSTER_WORKERS=2\n');
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2', STREAMIO_ENV_FILE: env, POOL_SIZE: '2', READ_BLOCK_MS: '200',
      STREAM_PATTERN: 'ra.*', SHUTDOWN_TIMEOUT: '5000',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('spreads the pools over both workers, each stream read by one of them', logs(async () => {
    await healthUntil(srv, (b) => b.streams === 12 && b.pools === 6, '12 streams in 6 pools');
    await writeAndDrain(streams, 'start');
    owners0 = await readers(streams, [0, 1]);
    const perSlot = [0, 1].map((slot) => [...owners0.values()].filter((x) => x === slot).length);
    assert.deepStrictEqual(perSlot, [6, 6]); // 3 pools of 2 on each worker
    // delivered once each to a client
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    for (const room of streams) await h.joinRoom(s, room);
    const ids = [];
    for (const room of streams) ids.push(await redis.call('XADD', room, '*', 'event', 'once', 'data', '1'));
    await inbox.waitCount(12, 15000);
    await h.sleep(300);
    assert.deepStrictEqual(inbox.items.map((m) => `${m.roomId} ${m.messageId}`).sort(),
      streams.map((r, i) => `${r} ${ids[i]}`).sort());
    h.closeClient(s);
  }));

  it('grows to 3 workers: no stream moves, new streams go to the new worker', logs(async () => {
    await reload(3, 2);
    await writeAndDrain(streams, 'grown');
    assert.deepStrictEqual(await readers(streams, [0, 1, 2]), owners0);
    const added = Array.from({ length: 6 }, (_, i) => h.uniq(`ra.n${i}`));
    for (const s of added) await redis.call('XADD', s, '*', 'event', 'seed', 'data', '0');
    await healthUntil(srv, (b) => b.streams === 18, '18 streams');
    await writeAndDrain(added, 'added');
    const owners = await readers(added, [0, 1, 2]);
    // the empty slot is the least loaded: it takes new pools first
    assert.ok([...owners.values()].filter((x) => x === 2).length >= 2, JSON.stringify([...owners]));
    streams.push(...added);
  }));

  it('reads a killed worker\'s streams again after its respawn, entries written meanwhile included', logs(async () => {
    const before = await readers(streams, [0, 1, 2]);
    const body = (await h.healthRetry(srv)).body;
    const victim = body.workers.find((w) => w.slot === 1).pid;
    const mine = streams.filter((s) => before.get(s) === 1);
    assert.ok(mine.length > 0);
    h.killWorker(srv, victim, 'SIGKILL');
    await h.waitUntil(() => !h.processAlive(victim), { timeout: 5000, message: 'victim gone' });
    // written while the slot has no process: left in Redis, not taken by the other workers
    for (const s of streams) await redis.call('XADD', s, '*', 'event', 'gap', 'data', '1');
    await healthUntil(srv, (b) => b.workers.length === 3 && b.workersAlive === 3
      && !b.workers.some((w) => w.pid === victim), 'worker 1 respawned');
    await h.waitUntil(async () => {
      for (const s of streams) if (Number(await redis.call('XLEN', s)) !== 0) return false;
      return true;
    }, { timeout: 20000, interval: 100, message: 'every gap entry read' });
    assert.deepStrictEqual(await readers(streams, [0, 1, 2]), before);
  }));

  it('shrinks to 1 worker: every pool moves to worker 0, none left unread or read twice', logs(async () => {
    // a writer all through the reload: no entry may stay unread
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        for (const s of streams) await redis.call('XADD', s, '*', 'event', 'during', 'data', String(written));
        written += 1;
        await h.sleep(50);
      }
    })();
    await reload(1, 3);
    await h.sleep(500);
    writing = false;
    await writer;
    assert.ok(written > 0);
    await writeAndDrain(streams, 'shrunk');
    const owners = await readers(streams, [0]);
    assert.equal(owners.size, streams.length);
    const b = (await h.healthRetry(srv)).body;
    assert.equal(b.streams, streams.length);
    assert.equal(b.workers[0].streams, streams.length);
  }));
});
