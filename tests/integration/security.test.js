'use strict';
// Slowloris timeouts, size limits, the first-packet timeout, the WebSocket Origin allow-list and
// the output-buffer limit: each answered as documented and each counted once in
// streamio_limit_rejections_total{limit}.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { rawExchange, wsOpen, limitCounts } = require('./lib/rawnet');

const R408 = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const R431 = 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const R413 = 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const EIO_WS = '/socket.io/?EIO=4&transport=websocket';

describe('security limits', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      HTTP_HEADER_TIMEOUT_MS: '400',
      HTTP_BODY_TIMEOUT_MS: '400',
      HTTP_KEEPALIVE_TIMEOUT_MS: '400',
      SOCKETIO_CONNECT_TIMEOUT: '500',
      SOCKETIO_MAX_HTTP_BUFFER_SIZE: '2048',
      SOCKETIO_CORS_ORIGINS: 'http://good.test,http://also.test',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  // Runs `act` and waits until exactly `n` more of `limit` are counted (and nothing else moved).
  async function counted(limit, n, act) {
    const before = await limitCounts(srv);
    const r = await act();
    await h.waitUntil(async () => (await limitCounts(srv))[limit] === before[limit] + n,
      { timeout: 5000, message: `${limit} counted ${n} more` });
    const after = await limitCounts(srv);
    for (const k of Object.keys(before)) {
      if (k !== limit) assert.equal(after[k], before[k], `${k} unchanged`);
    }
    return r;
  }

  it('answers a connection that sends nothing with 408 and closes it', logs(async () => {
    const r = await counted('header_timeout', 1, () => rawExchange(srv.port, []));
    assert.equal(r.closed, true);
    assert.equal(r.data.toString(), R408);
  }));

  it('answers a head trickling in (slowloris) with 408', logs(async () => {
    const bytes = [...'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa'];
    const r = await counted('header_timeout', 1, () => rawExchange(srv.port, bytes, { gap: 25 }));
    assert.equal(r.closed, true);
    assert.equal(r.data.toString(), R408);
  }));

  it('answers a body that stops half way with 408', logs(async () => {
    const req = 'POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\n' +
      'Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n40';
    const r = await counted('body_timeout', 1, () => rawExchange(srv.port, [req]));
    assert.equal(r.closed, true);
    assert.equal(r.data.toString(), R408);
  }));

  it('keeps a fast keep-alive client and closes it quietly once idle', logs(async () => {
    const req = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
    const before = await limitCounts(srv);
    const r = await rawExchange(srv.port, [req, req], { gap: 100 });
    assert.equal(r.closed, true);
    assert.equal(r.data.toString().match(/HTTP\/1\.1 200 OK/g).length, 2);
    // no 408 status line (the /health bodies may well contain the digits 408)
    assert.ok(!/HTTP\/1\.1 408/.test(r.data.toString()));
    assert.deepStrictEqual(await limitCounts(srv), before);
  }));

  it('answers a head over 16 KiB (Node\'s maxHeaderSize) with 431', logs(async () => {
    const req = `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17000)}\r\n\r\n`;
    const r = await counted('header_size', 1, () => rawExchange(srv.port, [req]));
    assert.equal(r.data.toString(), R431);
  }));

  it('answers a body over SOCKETIO_MAX_HTTP_BUFFER_SIZE with 413', logs(async () => {
    const req = 'POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\n' +
      'Content-Length: 5000\r\n\r\n';
    const r = await counted('body_size', 1, () => rawExchange(srv.port, [req]));
    assert.equal(r.data.toString(), R413);
  }));

  it('closes a WebSocket message over the limit with 1009', logs(async () => {
    const code = await counted('ws_message', 1, async () => {
      const ws = await wsOpen(srv.port);
      ws.send('4'.padEnd(3000, 'x'));
      return ws.closed;
    });
    assert.equal(code, 1009);
  }));

  it('closes a session that sends no CONNECT within SOCKETIO_CONNECT_TIMEOUT (WebSocket, polling)', logs(async () => {
    const ws = await counted('first_packet_timeout', 1, async () => {
      const w = await wsOpen(srv.port);
      await w.closed;
      return w;
    });
    assert.equal(ws.inbox.length, 1);
    assert.match(ws.inbox[0], /^0\{"sid":"[^"]+"/);
    const open = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const sid = JSON.parse((await open.text()).slice(1)).sid;
    await counted('first_packet_timeout', 1, async () => {});
    const again = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.equal(again.status, 400);
    assert.deepStrictEqual(await again.json(), { code: 1, message: 'Session ID unknown' });
    // a session that connects in time stays
    const ok = await wsOpen(srv.port);
    ok.send('40');
    await h.waitUntil(() => ok.inbox.length === 2, { message: 'CONNECT answered' });
    assert.match(ok.inbox[1], /^40\{"sid":"[^"]+"\}$/);
    await h.sleep(800);
    assert.equal(ok.readyState, ok.OPEN);
    ok.close();
  }));

  it('refuses a WebSocket from a foreign Origin with 403, allows listed, same-origin and no Origin', logs(async () => {
    const err = await counted('origin', 1, () => wsOpen(srv.port, { headers: { Origin: 'http://evil.test' } })
      .then(() => assert.fail('opened'), (e) => e));
    assert.equal(err.status, 403);
    assert.equal(err.body, '{"message":"Origin not allowed"}');
    const before = await limitCounts(srv);
    for (const headers of [{ Origin: 'http://good.test' }, { Origin: 'http://also.test' }, {},
      { Origin: `http://127.0.0.1:${srv.port}` }]) {
      const ws = await wsOpen(srv.port, { headers });
      await h.waitUntil(() => ws.inbox.length === 1, { message: 'open packet' });
      assert.match(ws.inbox[0], /^0\{"sid"/);
      ws.close();
    }
    assert.equal((await limitCounts(srv)).origin, before.origin);
    // polling is not refused (CORS headers are what keep a foreign page out there)
    const r = await counted('first_packet_timeout', 1, () => fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`,
      { headers: { Origin: 'http://evil.test' } }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  }));

  it('closes a client that does not read while its room receives megabytes', logs(async () => {
    const room = h.uniq('sec.slow');
    const ws = await wsOpen(srv.port);
    ws.send('40');
    ws.send(`421["join-room",${JSON.stringify(room)}]`);
    await h.waitUntil(() => ws.inbox.some((m) => m.startsWith('431[')), { message: 'join-room answered' });
    assert.match(ws.inbox.find((m) => m.startsWith('431[')), /"ok":true/);
    ws._socket.pause(); // stop reading: the server's output queue grows
    const code = await counted('output_buffer', 1, async () => {
      const big = 'x'.repeat(512 * 1024);
      for (let i = 0; i < 80; i++) {
        await redis.call('XADD', room, '*', 'event', 'big', 'data', big);
      }
      // ws.closed listens since the open: the close may come while the socket is paused (an
      // aborted connection is seen without reading), before a listener added now could hear it
      ws._socket.resume();
      return h.withDeadline(ws.closed.then(() => 'closed'), 20000, 'the slow client is closed');
    });
    assert.equal(code, 'closed');
  }));
});
