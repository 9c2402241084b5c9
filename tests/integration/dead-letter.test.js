'use strict';
// STREAM_DEAD_LETTER: a poison entry (a consumer kept failing on it) and an oversized one are
// moved to the dead-letter stream with their stream, id, reason and fields (read back with
// Debian's python3-redis), acknowledged and deleted, never delivered; counted in /metrics;
// `streamioctl dead-letter list | replay` show one and put it back, after which it is delivered.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { pyRedisOk, py, ctl, metrics, series } = require('./lib/backend');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-dl-'));

describe('dead-letter stream', { timeout: 90000, skip: h.ANCHOR_SKIP || (!pyRedisOk && 'python3-redis missing') }, () => {
  let redis;
  let srv;
  const sock = path.join(tmp, 'control.sock');
  const poisonRoom = h.uniq('dl.poison');
  let poisonId;

  before(async () => {
    redis = await h.startRedis();
    // a consumer of the group that read the entry three times and never acknowledged it
    poisonId = (await py(redis.port, 'poison', poisonRoom, 'streamio', 'crashy', '3')).id;
    srv = await h.startStreamio({
      STREAM_DEAD_LETTER: 'streamio:dead',
      STREAM_MAX_DELIVERIES: '3',
      STREAM_MAX_ENTRY_BYTES: '2048',
      STREAM_CLAIM_IDLE_MS: '400',
      STREAMIO_CONTROL_SOCKET: sock,
      CLUSTER_WORKERS: '2',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('moves a poison entry claimed once too often, and replay puts it back', logs(async () => {
    const client = await h.connectClient(srv.url);
    const got = h.collect(client);
    await h.joinRoom(client, poisonRoom);
    const dead = await h.waitUntil(async () => {
      const e = await py(redis.port, 'range', 'streamio:dead');
      return e.length ? e : null;
    }, { timeout: 15000, message: 'the poison entry in streamio:dead' });
    assert.equal(dead.length, 1);
    const [dlId, f] = dead[0];
    assert.deepEqual(Object.keys(f), ['stream', 'id', 'reason', 'deliveries', 'bytes', 'ts',
      'field:event', 'field:data']);
    assert.equal(f.stream, poisonRoom);
    assert.equal(f.id, poisonId);
    assert.equal(f.reason, 'poison');
    assert.equal(f.deliveries, '4');
    assert.equal(f.bytes, String('event'.length + 'poison'.length + 'data'.length + '{"crash":true}'.length));
    assert.ok(Math.abs(Number(f.ts) - Date.now()) < 60000);
    assert.equal(f['field:event'], 'poison');
    assert.equal(f['field:data'], '{"crash":true}');
    // acknowledged and deleted, never delivered
    await h.waitUntil(async () => (await redis.call('XLEN', poisonRoom)) === 0, { message: 'XDEL' });
    const pending = await redis.call('XPENDING', poisonRoom, 'streamio');
    assert.equal(pending[0], 0);
    assert.equal(got.items.length, 0);
    // streamioctl shows it, then puts it back: delivered like any new entry
    const list = await ctl(sock, 'dead-letter', 'list');
    assert.equal(list.code, 0, list.stderr);
    const shown = JSON.parse(list.stdout);
    assert.equal(shown.stream, 'streamio:dead');
    assert.deepEqual(shown.entries[0], {
      id: dlId, stream: poisonRoom, entryId: poisonId, reason: 'poison', deliveries: 4,
      bytes: Number(f.bytes), ts: Number(f.ts), fields: { event: 'poison', data: '{"crash":true}' },
    });
    const replay = await ctl(sock, 'dead-letter', 'replay', dlId);
    assert.equal(replay.code, 0, replay.stderr);
    const back = JSON.parse(replay.stdout);
    assert.equal(back.replayed, dlId);
    assert.equal(back.stream, poisonRoom);
    assert.match(back.id, /^\d+-\d+$/);
    const [msg] = await got.waitCount(1);
    assert.deepEqual(msg, {
      from: 'service', message: { event: 'poison', data: { crash: true } }, roomId: poisonRoom,
      event: 'poison', messageId: back.id,
    });
    assert.deepEqual(await py(redis.port, 'range', 'streamio:dead'), []);
    const again = await ctl(sock, 'dead-letter', 'replay', dlId);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`no dead letter ${dlId} in streamio:dead`));
    h.closeAllClients();
  }));

  it('moves an entry over STREAM_MAX_ENTRY_BYTES and delivers the others in order', logs(async () => {
    const room = h.uniq('dl.big');
    const client = await h.connectClient(srv.url);
    const got = h.collect(client);
    await h.joinRoom(client, room);
    const big = 'x'.repeat(3000);
    const ids = [];
    ids.push(await redis.call('XADD', room, '*', 'event', 'small', 'data', '{"n":1}'));
    ids.push(await redis.call('XADD', room, '*', 'event', 'big', 'data', big));
    ids.push(await redis.call('XADD', room, '*', 'event', 'small', 'data', '{"n":2}'));
    const msgs = await got.waitCount(2);
    assert.deepEqual(msgs.map((m) => m.messageId), [ids[0], ids[2]]);
    const dead = await h.waitUntil(async () => {
      const e = (await py(redis.port, 'range', 'streamio:dead')).filter(([, f]) => f.stream === room);
      return e.length ? e : null;
    }, { timeout: 10000, message: 'the big entry in streamio:dead' });
    assert.equal(dead.length, 1);
    const f = dead[0][1];
    assert.equal(f.id, ids[1]);
    assert.equal(f.reason, 'oversized');
    assert.equal(f.deliveries, '0');
    assert.equal(f.bytes, String(5 + 3 + 4 + 3000));
    assert.equal(f['field:data'], big);
    await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0, { message: 'all deleted' });
    assert.equal(got.items.length, 2);
    // counted once per reason, said once in the log
    const text = await h.waitUntil(async () => {
      const t = await metrics(srv.url);
      return series(t, 'streamio_dead_letters_total{reason="oversized"}') === 1 ? t : null;
    }, { message: '/metrics counts the dead letters' });
    assert.equal(series(text, 'streamio_dead_letters_total{reason="poison"}'), 1);
    assert.match(srv.handle.output(), new RegExp(`moved entry ${ids[1]} of ${room} to streamio:dead \\(oversized`));
    const usage = await ctl(sock, 'dead-letter', 'list', '0');
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /usage: streamioctl dead-letter list \[count: 1 to 1000\]/);
    h.closeAllClients();
  }));
});
