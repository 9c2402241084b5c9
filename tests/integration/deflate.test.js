'use strict';
// SOCKETIO_PER_MESSAGE_DEFLATE: RFC 7692 with npm socket.io-client (which offers it through ws), a
// raw ws client that compresses everything it sends, and headless Chromium with the socket.io
// browser bundle; exact payloads, compressed and not, and compressed bytes on the wire for a 4 KB
// entry. Off by default: the offer is ignored.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const h = require('./lib/harness');

// A 4 KB JSON `data` field, as seed 004's large payloads.
function bigData() {
  const items = [];
  for (let i = 0; items.length < 72; i++) items.push({ id: i, name: `item ${i}`, tags: ['a', 'b'], price: i * 1.25 });
  const data = JSON.stringify({ items });
  assert.ok(data.length > 4000, `data is ${data.length} bytes`);
  return [data, { items }];
}

function wireIn(sock) {
  return sock.io.engine.transport.ws._socket.bytesRead;
}

describe('permessage-deflate (SOCKETIO_PER_MESSAGE_DEFLATE=true)', { timeout: 120000 }, () => {
  let redis;
  let srv;
  let page;

  before(async () => {
    redis = await h.startRedis();
    page = await h.startTestPage();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1', SOCKETIO_PER_MESSAGE_DEFLATE: 'true',
      SOCKETIO_CORS_ORIGINS: page.url }, { redis });
  });

  after(() => page && page.close());

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('headless Chromium negotiates it and gets exact payloads, compressed and not',
    { skip: h.CHROMIUM ? false : 'chromium not installed' }, logs(async () => {
      const room = h.uniq('deflate.chromium');
      const [data, parsed] = bigData();
      page.html = `<!doctype html><html><body>
<script src="/socket.io.min.js"></script>
<script>
const report = (o) => fetch('/report?' + encodeURIComponent(JSON.stringify(o)));
const want = JSON.stringify(${JSON.stringify(parsed)});
const s = io(${JSON.stringify(srv.url)}, { transports: ['websocket'] });
s.on('connect', async () => {
  const ack = await s.emitWithAck('join-room', ${JSON.stringify(room)});
  report({ joined: ack, extensions: s.io.engine.transport.ws.extensions });
});
s.on('room:message', (m) => {
  if (m.event === 'big') {
    const { message, ...rest } = m;
    report({ big: { rest, event: message.event, same: JSON.stringify(message.data) === want } });
  } else {
    report({ small: m });
  }
});
</script></body></html>`;
      await h.withChromium(page.url, async (chrome) => {
        const find = (key) => page.events.find((e) => e[key]);
        await h.waitUntil(() => find('joined') || (!chrome.running && assert.fail(chrome.describe())),
          { timeout: 30000, message: 'the page joined the room' });
        assert.deepStrictEqual(find('joined'), {
          joined: { ok: true, roomId: room },
          extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
        });
        const big = await redis.call('XADD', room, '*', 'event', 'big', 'data', data);
        const small = await redis.call('XADD', room, '*', 'event', 'small', 'data', '{"n":1}');
        await h.waitUntil(() => find('big') && find('small'), { timeout: 15000, message: 'both entries in the page' });
        assert.deepStrictEqual(find('big').big, {
          rest: { from: 'service', roomId: room, event: 'big', messageId: big }, event: 'big', same: true,
        });
        assert.deepStrictEqual(find('small').small, {
          from: 'service', message: { event: 'small', data: { n: 1 } }, roomId: room, event: 'small', messageId: small,
        });
      });
    }));

  it('socket.io-client negotiates it and gets exact payloads, compressed and not', logs(async () => {
    const sock = await h.connectClient(srv.url);
    assert.equal(sock.io.engine.transport.ws.extensions, 'permessage-deflate');
    const inbox = h.collect(sock);
    const room = h.uniq('deflate.client');
    await h.joinRoom(sock, room);

    const [data, parsed] = bigData();
    const before = wireIn(sock);
    const id = await redis.call('XADD', room, '*', 'event', 'big', 'data', data);
    const msg = await inbox.waitFor((m) => m.messageId === id);
    assert.deepStrictEqual(msg, {
      from: 'service', message: { event: 'big', data: parsed }, roomId: room, event: 'big', messageId: id,
    });
    const onWire = wireIn(sock) - before;
    assert.ok(onWire < data.length / 3, `${onWire} bytes on the wire for ${data.length} of data`);

    const small = await redis.call('XADD', room, '*', 'event', 'small', 'data', '{"n":1}');
    const msg2 = await inbox.waitFor((m) => m.messageId === small);
    assert.deepStrictEqual(msg2.message, { event: 'small', data: { n: 1 } });
    h.closeClient(sock);
  }));

  it('inflates what a client compresses (every message, the handshake included)', logs(async () => {
    const url = `${srv.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
    const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
    const frames = [];
    let wake = () => {};
    ws.on('message', (m) => { frames.push(m.toString()); wake(); });
    const next = async (pred, label) => {
      const deadline = Date.now() + 10000;
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${label}; got ${JSON.stringify(frames)}`);
        await new Promise((r) => { wake = r; setTimeout(r, 200); });
      }
    };
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    assert.equal(ws.extensions, 'permessage-deflate');
    await next((f) => f.startsWith('0{'), 'Engine.IO open');
    ws.send('40');
    await next((f) => f.startsWith('40{"sid":'), 'Socket.IO connect');
    const room = h.uniq('deflate.raw');
    ws.send(`420${JSON.stringify(['join-room', room])}`);
    assert.equal(await next((f) => f.startsWith('430'), 'join ack'), `430${JSON.stringify([{ ok: true, roomId: room }])}`);
    const [data] = bigData();
    const id = await redis.call('XADD', room, '*', 'event', 'big', 'data', data);
    const got = await next((f) => f.includes(id), 'room:message');
    assert.equal(got, `42${JSON.stringify(['room:message', {
      from: 'service', message: { event: 'big', data: JSON.parse(data) }, roomId: room, event: 'big', messageId: id,
    }])}`);
    ws.close();
  }));
});

describe('permessage-deflate off (the default)', { timeout: 60000 }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '1' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('ignores the offer and sends plain frames', logs(async () => {
    const sock = await h.connectClient(srv.url);
    assert.equal(sock.io.engine.transport.ws.extensions, '');
    const inbox = h.collect(sock);
    const room = h.uniq('deflate.off');
    await h.joinRoom(sock, room);
    const [data, parsed] = bigData();
    const before = wireIn(sock);
    const id = await redis.call('XADD', room, '*', 'event', 'big', 'data', data);
    const msg = await inbox.waitFor((m) => m.messageId === id);
    assert.deepStrictEqual(msg.message, { event: 'big', data: parsed });
    assert.ok(wireIn(sock) - before > data.length, 'the entry went uncompressed');
    h.closeClient(sock);
  }));
});
