'use strict';
// room:message payload: exact shape, JSON / raw data, extra fields, no event, deletion after delivery.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

describe('payload (CLUSTER_WORKERS=1)', { timeout: 90000 }, () => {
  let redis;
  let srv;
  let sock;
  let inbox;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1', DISCOVERY_INTERVAL: '500' }, { redis });
    sock = await h.connectClient(srv.url);
    inbox = h.collect(sock);
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  // XADDs one entry to a fresh room the socket joined; resolves [id, received payload].
  async function roundTrip(room, fields) {
    await h.joinRoom(sock, room);
    const id = await redis.call('XADD', room, '*', ...fields);
    const msg = await inbox.waitFor((m) => m && m.messageId === id && m.roomId === room, 10000);
    return [id, msg];
  }

  it('delivers the seed example with exactly the documented payload', logs(async () => {
    const room = 'chat.user.123';
    const ack = await h.emitAck(sock, 'join-room', room);
    assert.deepStrictEqual(ack, { ok: true, roomId: room });
    const id = await redis.call('XADD', room, '*', 'event', 'user.message',
      'data', '{"user_id":123,"message":"Hello"}');
    const msg = await inbox.waitFor((m) => m && m.messageId === id, 10000);
    assert.deepStrictEqual(msg, {
      from: 'service',
      message: { event: 'user.message', data: { user_id: 123, message: 'Hello' } },
      roomId: 'chat.user.123',
      event: 'user.message',
      messageId: id,
    });
  }));

  it('passes data through as the raw string when it is not JSON', logs(async () => {
    const room = h.uniq('payload.raw');
    const raw = 'plain text, not {json: [1,2';
    const [id, msg] = await roundTrip(room, ['event', 'note', 'data', raw]);
    assert.deepStrictEqual(msg, {
      from: 'service',
      message: { event: 'note', data: raw },
      roomId: room,
      event: 'note',
      messageId: id,
    });
  }));

  it('parses JSON scalars, arrays and nested values in data', logs(async () => {
    const cases = [
      ['42', 42],
      ['-1.5e3', -1500],
      ['true', true],
      ['null', null],
      ['"str"', 'str'],
      ['[1,"two",{"three":[3]},null,false]', [1, 'two', { three: [3] }, null, false]],
      ['{"s":"\\u00fc \\"q\\" \\\\ \\n","e":{},"a":[],"n":0.25}',
        { s: 'ü "q" \\ \n', e: {}, a: [], n: 0.25 }],
    ];
    for (const [data, want] of cases) {
      const room = h.uniq('payload.json');
      const [id, msg] = await roundTrip(room, ['event', 'e', 'data', data]);
      assert.deepStrictEqual(msg, {
        from: 'service',
        message: { event: 'e', data: want },
        roomId: room,
        event: 'e',
        messageId: id,
      }, `data ${data}`);
    }
  }));

  it('puts every field into message and omits event when the entry has none', logs(async () => {
    const room = h.uniq('payload.noevent');
    const [id, msg] = await roundTrip(room,
      ['data', '{"a":1}', 'kind', 'alert', 'source', 'billing', 'empty', '']);
    assert.deepStrictEqual(msg, {
      from: 'service',
      message: { data: { a: 1 }, kind: 'alert', source: 'billing', empty: '' },
      roomId: room,
      messageId: id,
    });
    assert.equal(Object.prototype.hasOwnProperty.call(msg, 'event'), false, 'no event key');
  }));

  it('leaves non-data fields as strings and adds no data key when there is none', logs(async () => {
    const room = h.uniq('payload.nodata');
    const [id, msg] = await roundTrip(room, ['event', 'ping', 'count', '7', 'json', '{"x":1}']);
    assert.deepStrictEqual(msg, {
      from: 'service',
      message: { event: 'ping', count: '7', json: '{"x":1}' },
      roomId: room,
      event: 'ping',
      messageId: id,
    });
  }));

  it('keeps UTF-8 stream names and large values intact', logs(async () => {
    const room = h.uniq('payload.ütf8.é漢');
    const big = 'x'.repeat(70000) + 'ü'; // > 65535 bytes: 64-bit WebSocket length
    const [id, msg] = await roundTrip(room, ['event', 'big', 'data', JSON.stringify({ big }), 'tag', '☃']);
    assert.deepStrictEqual(msg, {
      from: 'service',
      message: { event: 'big', data: { big }, tag: '☃' },
      roomId: room,
      event: 'big',
      messageId: id,
    });
  }));

  it('delivers entries of one stream in stream order', logs(async () => {
    const room = h.uniq('payload.order');
    await h.joinRoom(sock, room);
    const ids = [];
    for (let i = 0; i < 30; i++) {
      ids.push(await redis.call('XADD', room, '*', 'event', 'seq', 'data', JSON.stringify({ i })));
    }
    // up to an end marker: a duplicate would arrive before it
    const got = (await h.untilEnd(redis, inbox, [room])).filter((m) => m && m.roomId === room);
    assert.deepStrictEqual(got.map((m) => m.messageId), ids);
    assert.deepStrictEqual(got.map((m) => m.message.data.i), ids.map((_, i) => i));
  }));

  it('deletes entries from the stream after delivering them', logs(async () => {
    const room = h.uniq('payload.del');
    await h.joinRoom(sock, room);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await redis.call('XADD', room, '*', 'event', 'd', 'data', String(i)));
    assert.equal(await redis.call('XLEN', room), 5);
    await inbox.waitFor((m) => m && m.messageId === ids[4], 10000);
    await h.waitUntil(async () => (await redis.call('XLEN', room)) === 0,
      { timeout: 5000, message: `XLEN ${room} to reach 0` });
    const rest = await redis.call('XRANGE', room, '-', '+');
    assert.deepStrictEqual(rest, []);
  }));
});
