'use strict';
// SOCKETIO_INBOUND_STREAM: client events go to a Redis stream that a back end written with
// Debian's python3-redis reads with XREADGROUP: exact fields, every socket's events in the order
// it sent them, acks carrying the entry id, refusals answered ({ok:false, error} or the `error`
// event) and counted; SOCKETIO_INBOUND_EVENTS and the token's publish claim gate them; the
// events rate limit still applies.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { pyRedisOk, py, metrics, series, sign } = require('./lib/backend');

const SECRET = 'inbound-secret-0123456789abcdef-0123456789';
const now = () => Math.floor(Date.now() / 1000);
const skip = h.ANCHOR_SKIP || (!pyRedisOk && 'python3-redis missing');

// Collects a socket's `error` events.
function errors(socket) {
  const box = [];
  socket.on('error', (e) => box.push(e));
  return box;
}

describe('client events into SOCKETIO_INBOUND_STREAM (2 workers)', { timeout: 90000, skip }, () => {
  let redis;
  let srv;
  const t0 = Date.now();

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '2',
      SOCKETIO_INBOUND_STREAM: 'streamio:inbound',
      SOCKETIO_INBOUND_EVENTS: 'chat.*,typing,bin',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('appends each event with its exact fields, in order per socket, and acks its id', logs(async () => {
    const clients = await h.connectClients(srv.url, 3);
    const sent = new Map(); // sid -> [{event, data, ackId}]
    await Promise.all(clients.map(async (s, k) => {
      const mine = [];
      sent.set(s.id, mine);
      for (let i = 0; i < 20; i++) {
        const data = { n: i, from: k, text: `héllo "${i}"` };
        if (i % 2 === 0) {
          const ack = await h.emitAck(s, 'chat.send', data, i);
          assert.equal(ack.ok, true);
          assert.match(ack.id, /^\d+-\d+$/);
          mine.push({ event: 'chat.send', data: [data, i], ackId: ack.id });
        } else {
          s.emit('typing', `room.${k}`);
          mine.push({ event: 'typing', data: [`room.${k}`] });
        }
      }
    }));
    const got = await py(redis.port, 'consume', 'streamio:inbound', 'backend', 'b1', '60', '10000');
    assert.equal(got.length, 60);
    const host = require('node:os').hostname();
    const bySid = new Map();
    for (const [id, f] of got) {
      assert.deepEqual(Object.keys(f), ['event', 'data', 'sid', 'server', 'ts']);
      assert.match(f.server, new RegExp(`^${host.replace(/\./g, '\\.')}:${srv.port}:[01]:\\d+$`));
      assert.ok(Number(f.ts) >= t0 && Number(f.ts) <= Date.now());
      if (!bySid.has(f.sid)) bySid.set(f.sid, []);
      bySid.get(f.sid).push({ id, event: f.event, data: JSON.parse(f.data), raw: f.data });
    }
    assert.equal(bySid.size, 3);
    for (const [sid, mine] of sent) {
      const theirs = bySid.get(sid);
      assert.equal(theirs.length, 20, `socket ${sid}`);
      theirs.forEach((e, i) => {
        assert.equal(e.event, mine[i].event);
        assert.deepEqual(e.data, mine[i].data);
        assert.equal(e.raw, JSON.stringify(mine[i].data)); /* minified, as JSON.stringify */
        if (mine[i].ackId) assert.equal(e.id, mine[i].ackId);
      });
    }
    const text = await metrics(srv.url);
    assert.equal(series(text, 'streamio_inbound_events_total'), 60);
    h.closeAllClients();
  }));

  it('ignores events outside SOCKETIO_INBOUND_EVENTS, refuses binary attachments, answers each', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errs = errors(s);
    assert.deepEqual(await h.emitAck(s, 'other', 1), { ok: false, error: 'Event not accepted' });
    s.emit('other', 2); /* no ack: ignored, as the Node server ignores events it has no handler for */
    assert.deepEqual(await h.emitAck(s, 'bin', Buffer.from([1, 2, 3])),
      { ok: false, error: 'Binary attachments are not supported' });
    s.emit('bin', Buffer.from([4]));
    await h.waitUntil(() => errs.length === 1, { message: 'the error event' });
    assert.deepEqual(errs, [{ message: 'Binary attachments are not supported' }]);
    // the seed's own events never reach the stream
    await h.joinRoom(s, 'inbound.room');
    assert.deepEqual(await h.emitAck(s, 'chat.last', 'x'), { ok: true, id: (await h.waitUntil(async () => {
      const last = await redis.call('XREVRANGE', 'streamio:inbound', '+', '-', 'COUNT', '1');
      return last.length ? last[0][0] : null;
    })) });
    const events = (await redis.call('XRANGE', 'streamio:inbound', '-', '+')).map(([, f]) => f[1]);
    assert.ok(!events.includes('join-room') && !events.includes('other') && !events.includes('bin'));
    const text = await metrics(srv.url);
    assert.equal(series(text, 'streamio_inbound_refused_total{reason="not_accepted"}'), 2);
    assert.equal(series(text, 'streamio_inbound_refused_total{reason="binary"}'), 2);
    assert.match(srv.handle.output(), /client event bin of socket \S+ not added to streamio:inbound: Binary attachments are not supported \(binary, 1 so far\)/);
    h.closeAllClients();
  }));

  it('answers {ok:false} and the error event when Redis refuses the XADD, counted', logs(async () => {
    const s = await h.connectClient(srv.url);
    const errs = errors(s);
    await redis.call('RENAME', 'streamio:inbound', 'streamio:inbound.saved');
    await redis.call('SET', 'streamio:inbound', 'not a stream');
    try {
      assert.deepEqual(await h.emitAck(s, 'chat.x', 1), { ok: false, error: 'Event not stored' });
      s.emit('chat.x', 2);
      await h.waitUntil(() => errs.length === 1, { message: 'the error event' });
      assert.deepEqual(errs, [{ message: 'Event not stored' }]);
      const text = await metrics(srv.url);
      assert.equal(series(text, 'streamio_inbound_refused_total{reason="redis"}'), 2);
      assert.match(srv.handle.output(), /not added to streamio:inbound: WRONGTYPE/);
    } finally {
      await redis.call('DEL', 'streamio:inbound');
      await redis.call('RENAME', 'streamio:inbound.saved', 'streamio:inbound');
    }
    h.closeAllClients();
  }));
});

describe('client events with authentication: user, publish claim, rate limit', { timeout: 60000, skip }, () => {
  let redis;
  let srv;

  before(async () => {
    // small stream nodes, so that MAXLEN ~ trims at a few entries
    redis = await h.startRedis({ args: ['--stream-node-max-entries', '4'] });
    srv = await h.startStreamio({
      AUTH_JWT_SECRET: SECRET,
      SOCKETIO_INBOUND_STREAM: 'in',
      SOCKETIO_INBOUND_MAXLEN: '5',
      RATE_LIMIT_EVENTS_PER_SEC: '1',
      RATE_LIMIT_EVENTS_BURST: '8',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('adds the token\'s sub and lets the publish claim gate events by name or room', logs(async () => {
    const token = sign({ exp: now() + 600, sub: 'alice', publish: ['typing', 'chat.team.*'] }, SECRET);
    const s = await h.connectClient(srv.url, { auth: { token } });
    const errs = errors(s);
    const a = await h.emitAck(s, 'typing', 'chat.other');
    assert.equal(a.ok, true);
    const b = await h.emitAck(s, 'send-message', { roomId: 'chat.team.7', text: 'hi' });
    assert.equal(b.ok, true);
    assert.deepEqual(await h.emitAck(s, 'send-message', { roomId: 'chat.other', text: 'no' }),
      { ok: false, error: 'Event not allowed' });
    s.emit('send-message', 'chat.elsewhere');
    await h.waitUntil(() => errs.length === 1, { message: 'the error event' });
    assert.deepEqual(errs, [{ message: 'Event not allowed' }]);
    const got = await py(redis.port, 'consume', 'in', 'g', 'c', '2', '5000');
    assert.deepEqual(got.map(([id]) => id), [a.id, b.id]);
    assert.deepEqual(Object.keys(got[0][1]), ['event', 'data', 'sid', 'user', 'server', 'ts']);
    assert.equal(got[0][1].user, 'alice');
    assert.equal(got[1][1].data, '[{"roomId":"chat.team.7","text":"hi"}]');
    assert.equal(got[0][1].sid, s.id);
    h.closeAllClients();
  }));

  it('keeps the events rate limit, and trims the stream with MAXLEN ~', logs(async () => {
    const token = sign({ exp: now() + 600, sub: 'bob' }, SECRET);
    const s = await h.connectClient(srv.url, { auth: { token } });
    const count = async (name) => series(await metrics(srv.url), name) || 0;
    const before = await count('streamio_inbound_events_total');
    for (let i = 0; i < 20; i++) s.emit('tick', i);
    // every packet is either refused by the bucket or stored: wait until all 20 are accounted for
    const dropped = await h.waitUntil(async () => {
      const d = await count('streamio_limit_rejections_total{limit="rate_events"}');
      const added = (await count('streamio_inbound_events_total')) - before;
      return d + added === 20 ? d : null;
    }, { message: '20 events stored or refused' });
    /* the burst of 8, less the token the CONNECT took */
    assert.ok(dropped === 12 || dropped === 13, `dropped ${dropped}`);
    const len = Number(await redis.call('XLEN', 'in'));
    assert.ok(len >= 5 && len < 2 + 20 - dropped, `XLEN ${len}`);
    h.closeAllClients();
  }));
});
