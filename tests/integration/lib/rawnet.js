'use strict';
/*
 * Raw clients for the limit and abuse tests: plain TCP with exact bytes (slowloris, garbage,
 * hand-made requests), a `ws` WebSocket speaking Engine.IO/Socket.IO by hand, and the
 * streamio_limit_rejections_total series of GET /metrics.
 */
const net = require('node:net');
const WebSocket = require('ws');
const { HOST, withDeadline } = require('./harness');
const { parse } = require('./promtext');

/*
 * Opens a TCP connection, writes each of `chunks` (`gap` ms apart), and resolves with
 * {data: Buffer, closed: true} once the server closes, or after `timeout` with closed false.
 */
function rawExchange(port, chunks, { gap = 0, timeout = 5000 } = {}) {
  return new Promise((resolve) => {
    const parts = [];
    const s = net.connect(port, HOST);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(parts), closed });
    };
    const timer = setTimeout(() => finish(false), timeout);
    s.on('data', (d) => parts.push(d));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.once('connect', async () => {
      for (const c of chunks) {
        if (done || s.destroyed) return;
        s.write(c);
        if (gap) await new Promise((r) => setTimeout(r, gap));
      }
    });
  });
}

/* A WebSocket to /socket.io/ (Engine.IO v4); resolves once open, rejects on an HTTP refusal with
 * the status and body. Messages are collected in ws.inbox. */
function wsOpen(port, { headers = {}, query = '', timeout = 5000 } = {}) {
  const ws = new WebSocket(`ws://${HOST}:${port}/socket.io/?EIO=4&transport=websocket${query}`,
    { headers, perMessageDeflate: false });
  ws.inbox = [];
  ws.on('message', (d, isBinary) => ws.inbox.push(isBinary ? d : d.toString()));
  ws.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => {});
  return withDeadline(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`),
        { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  }), timeout, 'WebSocket open');
}

/* {limit: value} of the server-wide streamio_limit_rejections_total series. */
async function limitCounts(srv) {
  const r = await fetch(`${srv.url}/metrics`);
  const fam = parse(await r.text()).get('streamio_limit_rejections_total');
  const out = {};
  for (const s of fam.samples) {
    if (!('worker' in s.labels)) out[s.labels.limit] = s.value;
  }
  return out;
}

module.exports = { rawExchange, wsOpen, limitCounts };
