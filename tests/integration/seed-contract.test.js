'use strict';
// The seed contract under the default limits: one client script, run against streamio with no
// setting at all and against the seed's Node server (the anchor rendition, SEED_ANCHOR_DIR,
// default ../shared/anchors/node-seed beside the repository, run with this directory's
// node_modules), must get exactly the same answers: bursts of joins and of events (no
// 'Rate limit exceeded'), the rooms limit, joining one's own id and another socket's, invalid
// ids, leave-room, binary arguments, the largest message and the first one too large. Every
// default limit that could change an answer is exercised here, and so are the HTTP idle times: a
// silent keep-alive connection is closed after Node's keepAliveTimeout (5 s) while a slow head
// keeps its headersTimeout (60 s).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');

const ANCHOR = path.resolve(process.env.SEED_ANCHOR_DIR || path.join(__dirname, '../../../shared/anchors/node-seed'));
const haveAnchor = fs.existsSync(path.join(ANCHOR, 'server.js'));
const ACK_MS = 5000;
const MAX_PAYLOAD = 1000000; // SOCKETIO_MAX_HTTP_BUFFER_SIZE and Node's maxHttpBufferSize

// Each request's ack, or 'no ack' when none came within ACK_MS.
const ack = (s, ...args) => h.emitAckTimeout(s, ACK_MS, ...args).catch(() => 'no ack');

// The status of a polling handshake whose request head carries a Cookie of `bytes` bytes (Node
// takes heads up to 16 KiB, then answers 431).
function handshakeWithCookie(url, bytes) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/socket.io/?EIO=4&transport=polling`, {
      agent: false, timeout: 10000, headers: { Cookie: `c=${'x'.repeat(bytes)}` },
    }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy(new Error('handshake timed out')));
    req.on('error', reject);
  });
}

// The status of the complete HTTP/1.1 answer at the start of `text` and its length, or null while
// it is still arriving.
function answer(text) {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  const total = end + 4 + (len ? Number(len[1]) : 0);
  return len && text.length >= total ? { status: Number(text.slice(9, 12)), total } : null;
}

// A raw TCP client that keeps what it reads, when it last read, and when the server closed it.
async function rawClient(port, name) {
  const s = net.connect(port, h.HOST);
  s.text = '';
  s.setEncoding('latin1');
  s.on('data', (d) => { s.text += d; s.lastReadAt = Date.now(); });
  s.on('error', () => {});
  s.closedAt = new Promise((resolve) => s.once('close', () => resolve(Date.now())));
  await h.withDeadline(new Promise((resolve) => s.once('connect', resolve)), 10000, `${name}: connect`);
  return s;
}

// After an answer on keep-alive, what a client that then falls silent sees: its answer's status,
// when the server closed the connection (after the last bytes read, as a range: a loaded box only
// delays it) and whether it sent anything more. `next`: bytes of a next request written with the
// first one, so that the silence comes half way through a head.
async function silentKeepAlive(c, head, next) {
  c.write(`${head}\r\n${next}`);
  const a = await h.waitUntil(() => answer(c.text), { timeout: 10000, message: 'the keep-alive answer' });
  const ms = await h.withDeadline(c.closedAt, 30000, 'the server closes the silent keep-alive connection') -
    c.lastReadAt;
  return { answer: a.status, closedAfter: ms >= 4000 && ms < 30000 ? '4 to 30 s' : `${ms} ms`,
    sentMore: c.text.length > a.total };
}

// Three connections opened together: one whose first request head stops half way, and two that
// fall silent after an answer on keep-alive, one with nothing of a next request and one half way
// through its head. Whether the slow head was still open once both were closed, and its answer
// once completed.
async function silenceAndSlowHead(port) {
  const head = 'GET /health HTTP/1.1\r\nHost: x\r\n';
  const slow = await rawClient(port, 'slow head');
  const idle = await rawClient(port, 'idle keep-alive');
  const stalled = await rawClient(port, 'keep-alive stalled half way through a head');
  try {
    slow.write(head);
    const t = {};
    [t.idle, t.stalled] = await Promise.all([silentKeepAlive(idle, head, ''),
      silentKeepAlive(stalled, head, 'GET /he')]);
    t.slowHeadOpen = !slow.destroyed && slow.text === '';
    slow.write('\r\n');
    const a = await h.waitUntil(() => answer(slow.text), { timeout: 10000, message: 'the slow head\'s answer' });
    t.slowHeadAnswer = a.status;
    return t;
  } finally {
    for (const c of [slow, idle, stalled]) c.destroy();
  }
}

// The transcript of one server's answers to the script. Socket ids are replaced by names.
async function script(url) {
  const t = {};
  t.heads = [await handshakeWithCookie(url, 12000), await handshakeWithCookie(url, 17000)];
  const s = await h.connectClient(url, { timeout: 10000 });
  const other = await h.connectClient(url, { timeout: 10000 });
  const errors = h.collect(s, 'error');
  const ids = (v) => JSON.parse(JSON.stringify(v).split(s.id).join('<own id>').split(other.id).join('<other id>'));

  // 300 joins of one room at once: a client re-joining its room on every render
  t.sameRoom = await Promise.all(Array.from({ length: 300 }, () => ack(s, 'join-room', 'contract.same')));
  // 250 events nobody listens to, then a join: the seed ignores the former
  for (let i = 0; i < 250; i++) s.emit('typing', { i });
  t.afterNoise = await ack(s, 'join-room', 'contract.after-noise');
  // rooms at connect, past MAX_ROOMS_PER_SOCKET (2 joined already)
  t.rooms = await Promise.all(Array.from({ length: 120 }, (_, i) => ack(s, 'join-room', `contract.r${i}`)));
  // at the limit: one's own id (always one of its rooms), another socket's id (a room like any)
  t.ownId = ids(await ack(s, 'join-room', s.id));
  t.otherId = ids(await ack(other, 'join-room', s.id));
  // invalid room ids come before the limit
  t.invalid = await Promise.all([42, '', 'x'.repeat(513), '\u{1F600}'.repeat(257), null, ['a'], { a: 1 }]
    .map((r) => ack(s, 'join-room', r)));
  t.binary = await ack(s, 'join-room', Buffer.from('contract.bin'));
  t.leave = await Promise.all([ack(s, 'leave-room', 'contract.not-joined'), ack(s, 'leave-room', 'contract.r0'),
    ack(s, 'leave-room', 42)]);
  t.afterLeave = await ack(s, 'join-room', 'contract.extra');
  // the largest message is taken; one byte more closes the connection
  const fits = `42["big",${JSON.stringify('x'.repeat(MAX_PAYLOAD - 12))}]`;
  assert.equal(Buffer.byteLength(fits), MAX_PAYLOAD);
  s.emit('big', 'x'.repeat(MAX_PAYLOAD - 12));
  t.afterLargest = await ack(s, 'join-room', 'contract.after-largest');
  // every error event was sent before the last ack (one connection, in order)
  t.errors = errors.items.slice();
  const closed = new Promise((resolve) => s.once('disconnect', resolve));
  s.emit('big', 'x'.repeat(MAX_PAYLOAD - 11));
  t.tooLarge = s.connected ? await h.withDeadline(closed, 15000, 'the disconnect after a message over the limit')
    : 'disconnected before';
  t.otherStillConnected = (await ack(other, 'leave-room', 'contract.x')).ok === true && other.connected;
  h.closeClient(other);
  return t;
}

describe('the seed contract under default limits: streamio and the seed\'s Node server answer alike', {
  timeout: 180000,
  skip: h.ANCHOR_SKIP || (!haveAnchor && `the Node anchor is not at ${ANCHOR} (set SEED_ANCHOR_DIR)`),
}, () => {
  let redis;
  let srv;
  let node;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({}, { redis });
    const port = await h.freePort();
    node = await h.startServer({
      cmd: process.execPath,
      args: [path.join(ANCHOR, 'server.js')],
      env: { ...h.baseEnv(), NODE_PATH: path.join(__dirname, 'node_modules'), HOST: h.HOST, PORT: String(port),
        REDIS_HOST: h.HOST, REDIS_PORT: String(redis.port), LOG_LEVEL: 'warn' },
      port,
      name: 'node-seed',
    });
  });

  after(async () => {
    h.closeAllClients();
    if (node) await node.stop();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  it('gives the same answers to the same client script', h.withLogs(() => srv, async () => {
    const seed = await script(node.url);
    // the script means what it says: the seed answered every request
    assert.ok(seed.sameRoom.every((a) => a.ok === true), JSON.stringify(seed.sameRoom.slice(-3)));
    assert.deepEqual(seed.rooms.slice(97, 99).map((a) => a.ok), [true, false]);
    assert.deepEqual(seed.ownId, { ok: true, roomId: '<own id>' });
    assert.equal(seed.tooLarge, 'transport close');
    assert.deepEqual(seed.heads, [200, 431]);
    const ours = await script(srv.url);
    assert.deepStrictEqual(ours, seed);
  }));

  it('closes a silent keep-alive connection after about 5 s while a slow head keeps its time',
    h.withLogs(() => srv, async () => {
      const [seed, ours] = await Promise.all([silenceAndSlowHead(node.port), silenceAndSlowHead(srv.port)]);
      const silent = { answer: 200, closedAfter: '4 to 30 s', sentMore: false };
      assert.deepStrictEqual(seed, { idle: silent, stalled: silent, slowHeadOpen: true, slowHeadAnswer: 200 });
      assert.deepStrictEqual(ours, seed);
    }));
});
