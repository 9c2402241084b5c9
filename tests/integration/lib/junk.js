'use strict';
/*
 * Junk traffic for the abuse test and scripts/bench-abuse.js: raw TCP clients that each misbehave
 * in one way and report what the server answered. Every client is bounded in time (`deadline`
 * ms): one the server has not closed by then is destroyed and reported as not closed.
 *
 *   idle       connects and never sends a byte           -> 408, closed
 *   slowloris  a request head, one byte every 200 ms     -> 408, closed
 *   garbage    binary bytes instead of HTTP              -> 400, closed
 *   bigframe   WebSocket, one text frame over the limit  -> Close 1009
 *   badutf8    WebSocket, a text frame of invalid UTF-8  -> Close 1007
 *   badjson    WebSocket, a CONNECT with broken JSON     -> closed
 *   flood      WebSocket, CONNECT then 300 events at once -> `error` Rate limit exceeded, closed
 *   forged     WebSocket, CONNECT with a forged token    -> CONNECT_ERROR Invalid token, closed
 *              once SOCKETIO_CONNECT_TIMEOUT passes
 */
const net = require('node:net');
const crypto = require('node:crypto');
const { HOST } = require('./harness');

const KINDS = ['idle', 'slowloris', 'garbage', 'bigframe', 'badutf8', 'badjson', 'flood', 'forged'];
const R408 = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const UPGRADE = 'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n'
  + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  + 'Sec-WebSocket-Version: 13\r\n\r\n';

// A masked client frame (RFC 6455 §5.2).
function frame(opcode, payload) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  let head;
  if (p.length < 126) head = Buffer.from([0x80 | opcode, 0x80 | p.length]);
  else if (p.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 126; head.writeUInt16BE(p.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(p.length), 2);
  }
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// Server frames (unmasked) from buf: {texts, close (code or null)}; stops at an incomplete one.
function parseFrames(buf) {
  const texts = [];
  let close = null;
  let i = 0;
  while (i + 2 <= buf.length) {
    const op = buf[i] & 0x0f;
    let len = buf[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) { if (off + 2 > buf.length) break; len = buf.readUInt16BE(off); off += 2; }
    else if (len === 127) { if (off + 8 > buf.length) break; len = Number(buf.readBigUInt64BE(off)); off += 8; }
    if (off + len > buf.length) break;
    const p = buf.subarray(off, off + len);
    if (op === 1) texts.push(p.toString());
    if (op === 8) close = len >= 2 ? p.readUInt16BE(0) : 0;
    i = off + len;
  }
  return { texts, close };
}

/*
 * Runs one junk client of `kind` against port; resolves {kind, ok, closed, detail}: ok when the
 * server answered as documented above and closed the connection itself.
 */
function junkOne(port, kind, { token, forged, deadline = 8000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    const parts = [];
    let done = false;
    let head = null; // bytes after the 101 head, once upgraded
    let acted = false;
    let trickle = null;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(trickle);
      s.destroy();
      const data = Buffer.concat(parts);
      resolve({ kind, closed, ...judge(kind, data, closed) });
    };
    const timer = setTimeout(() => finish(false), deadline);
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
    s.on('data', (d) => {
      parts.push(d);
      if (head !== null || !KINDS.slice(3).includes(kind)) return;
      const all = Buffer.concat(parts);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      head = all.subarray(end + 4);
      if (!acted && parseFrames(head).texts.length) act();
    });
    const act = () => {
      acted = true;
      if (kind === 'bigframe') s.write(frame(1, Buffer.alloc(20000, 0x61)));
      else if (kind === 'badutf8') s.write(frame(1, Buffer.from([0x34, 0x32, 0xc3, 0x28])));
      else if (kind === 'badjson') s.write(frame(1, '40{"token":'));
      else if (kind === 'forged') s.write(frame(1, `40${JSON.stringify({ token: forged })}`));
      else if (kind === 'flood') {
        const burst = [frame(1, `40${JSON.stringify({ token })}`)];
        for (let i = 0; i < 300; i++) burst.push(frame(1, `42["noise",${i}]`));
        s.write(Buffer.concat(burst));
      }
    };
    s.once('connect', () => {
      if (kind === 'idle') return;
      if (kind === 'garbage') {
        s.write(Buffer.concat([Buffer.from([0, 0xff]), crypto.randomBytes(254)]));
      } else if (kind === 'slowloris') {
        s.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
        trickle = setInterval(() => { if (!s.destroyed) s.write('a'); }, 200);
      } else {
        s.write(UPGRADE);
      }
    });
  });
}

function judge(kind, data, closed) {
  if (!closed) return { ok: false, detail: 'not closed by the server' };
  const text = data.toString('latin1');
  if (kind === 'idle' || kind === 'slowloris') return { ok: text === R408, detail: text.slice(0, 40) };
  if (kind === 'garbage') return { ok: text.startsWith('HTTP/1.1 400 Bad Request\r\n'), detail: text.slice(0, 40) };
  const end = data.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 101 ') || end < 0) return { ok: false, detail: `no 101: ${text.slice(0, 40)}` };
  const { texts, close } = parseFrames(data.subarray(end + 4));
  const opened = /^0\{"sid":"/.test(texts[0] || '');
  const detail = `close=${close} texts=${JSON.stringify(texts.slice(0, 3))}`;
  if (!opened) return { ok: false, detail };
  if (kind === 'bigframe') return { ok: close === 1009, detail };
  if (kind === 'badutf8') return { ok: close === 1007, detail };
  if (kind === 'badjson') return { ok: texts.length === 1, detail };
  if (kind === 'flood') {
    return { ok: texts.includes('42["error",{"message":"Rate limit exceeded"}]'), detail };
  }
  if (kind === 'forged') return { ok: texts.includes('44{"message":"Invalid token"}'), detail };
  return { ok: false, detail: `unknown kind ${kind}` };
}

/*
 * Runs `total` junk clients, kinds in turn, at most `concurrency` at once; resolves with
 * {byKind: {kind: {n, ok, closed}}, failures: [first few results that were not ok]}.
 */
async function junkRun(port, { total, concurrency, token, forged, deadline, shouldStop = () => false }) {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, { n: 0, ok: 0, closed: 0 }]));
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < total && !shouldStop()) {
      const kind = KINDS[next++ % KINDS.length];
      const r = await junkOne(port, kind, { token, forged, deadline });
      const k = byKind[kind];
      k.n++;
      if (r.ok) k.ok++;
      if (r.closed) k.closed++;
      if (!r.ok && failures.length < 10) failures.push(r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { byKind, failures };
}

// Resident set size of a process in bytes (0 when it is gone).
function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

module.exports = { KINDS, junkOne, junkRun, rssBytes, frame, parseFrames };
