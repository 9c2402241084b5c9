'use strict';
/*
 * A Node socket.io server in a cluster through @socket.io/redis-adapter (classic or sharded) or
 * @socket.io/redis-streams-adapter (streams, with connection state recovery on), the peer streamio
 * must interoperate with, plus a @socket.io/redis-emitter. Started by lib/peer.js with
 * child_process.fork: argv = port, redis port, mode (classic|sharded|streams), and optionally
 * options as JSON: `cluster` (the redis port is a seed of a Redis Cluster) and the streams
 * adapter's options (streamName, streamCount, maxLen).
 * Its clients use streamio's events (`join-room` with an ack). The test drives it over the IPC
 * channel: {id, cmd, ...} -> {id, ok, value | error, ms}. It listens on 127.0.0.1 only and exits
 * when its parent goes away.
 */
const http = require('node:http');
const { Server } = require('socket.io');
const { createClient, createCluster } = require('redis');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');
const { Emitter } = require('@socket.io/redis-emitter');
const streams = require('@socket.io/redis-streams-adapter');

const [port, redisPort, mode, optsJson] = process.argv.slice(2);
const { cluster = false, ...streamsOpts } = JSON.parse(optsJson || '{}');
const RECOVERY_MS = 120000; // the Node default maxDisconnectionDuration

async function main() {
  const url = `redis://127.0.0.1:${redisPort}`;
  // cluster: a Redis Cluster through redis v4's createCluster, as sharded-adapter users run it
  const pub = cluster ? createCluster({ rootNodes: [{ url }] }) : createClient({ url });
  const sub = pub.duplicate();
  const emitClient = pub.duplicate();
  for (const c of [pub, sub, emitClient]) c.on('error', () => {});
  await Promise.all([pub.connect(), sub.connect(), emitClient.connect()]);
  const httpServer = http.createServer();
  let adapter;
  if (mode === 'streams') adapter = streams.createAdapter(pub, streamsOpts);
  else if (mode === 'sharded') adapter = createShardedAdapter(pub, sub, { subscriptionMode: 'dynamic' });
  else adapter = createAdapter(pub, sub, { requestsTimeout: 5000 });
  const opts = { adapter, transports: mode === 'streams' ? ['polling', 'websocket'] : ['websocket'] };
  if (mode === 'streams') opts.connectionStateRecovery = { maxDisconnectionDuration: RECOVERY_MS };
  const io = new Server(httpServer, opts);
  const emitter = new Emitter(emitClient);
  const sse = [];
  const recovered = []; // socket ids that came back with their state
  io.on('connection', (socket) => {
    if (socket.recovered) recovered.push(socket.id);
    socket.on('join-room', (room, ack) => {
      socket.join(room);
      if (typeof ack === 'function') ack({ ok: true, roomId: room });
    });
    socket.on('ask', (q, ack) => ack(`answer:${q}`));
  });
  io.of('/admin').on('connection', () => {}); // a second namespace, shared with streamio
  io.on('ping-servers', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    sse.push(args);
    if (ack) ack(`node-${port}`);
  });

  const pacer = { timer: null, sent: 0 };
  const commands = {
    broadcast({ nsp = '/', rooms = [], except = [], event, args = [], volatile = false, local = false }) {
      let op = io.of(nsp);
      for (const r of rooms) op = op.to(r);
      for (const r of except) op = op.except(r);
      if (volatile) op = op.volatile;
      if (local) op = op.local;
      op.emit(event, ...args);
      return true;
    },
    // emit(event, {n: 1, b: <bytes>}, <extra>): Buffers make it a binary packet
    broadcastBinary({ nsp = '/', rooms = [], event, bytes, extra }) {
      let op = io.of(nsp);
      for (const r of rooms) op = op.to(r);
      op.emit(event, { n: 1, b: Buffer.from(bytes) }, Buffer.from(extra));
      return true;
    },
    emitterBinary({ rooms = [], event, bytes }) {
      let op = emitter;
      for (const r of rooms) op = op.to(r);
      op.emit(event, Buffer.from(bytes));
      return true;
    },
    emitterJoin({ rooms = [], target }) {
      emitter.in(rooms).socketsJoin(target);
      return true;
    },
    // A steady, bounded stream: emit(event, seq) to `room` (or to each of `rooms`, one broadcast
    // each), `burst` every `everyMs`, seq 1..count, until count went out or pacedStop;
    // pacedStatus says how many did.
    paced({ room, rooms = [room], event, count, burst = 1, everyMs = 5 }) {
      if (pacer.timer) throw new Error('a paced stream is running');
      pacer.sent = 0;
      pacer.timer = setInterval(() => {
        for (let i = 0; i < burst && pacer.sent < count; i++) {
          pacer.sent++;
          for (const r of rooms) io.to(r).emit(event, pacer.sent);
        }
        if (pacer.sent >= count) commands.pacedStop();
      }, everyMs);
      return true;
    },
    pacedStop() {
      clearInterval(pacer.timer);
      pacer.timer = null;
      return pacer.sent;
    },
    pacedStatus() {
      return { sent: pacer.sent, running: pacer.timer !== null };
    },
    emitter({ rooms = [], except = [], event, args = [] }) {
      let op = emitter;
      for (const r of rooms) op = op.to(r);
      for (const r of except) op = op.except(r);
      op.emit(event, ...args);
      return true;
    },
    async allRooms() {
      return [...(await io.of('/').adapter.allRooms())];
    },
    async fetchSockets({ rooms = [] }) {
      const list = await io.in(rooms).fetchSockets();
      return list.map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake, data: s.data }));
    },
    socketsJoin({ rooms = [], target }) {
      io.in(rooms).socketsJoin(target);
      return true;
    },
    socketsLeave({ rooms = [], target }) {
      io.in(rooms).socketsLeave(target);
      return true;
    },
    disconnectSockets({ rooms = [], close = false }) {
      io.in(rooms).disconnectSockets(close);
      return true;
    },
    serverSideEmit({ event, args = [] }) {
      io.serverSideEmit(event, ...args);
      return true;
    },
    async serverSideEmitWithAck({ event, args = [] }) {
      return io.serverSideEmitWithAck(event, ...args);
    },
    async broadcastWithAck({ rooms = [], event, args = [], timeout = 3000 }) {
      let op = io;
      for (const r of rooms) op = op.to(r);
      return op.timeout(timeout).emitWithAck(event, ...args);
    },
    async serverCount() {
      return io.of('/').adapter.serverCount();
    },
    localRooms() {
      return [...io.of('/').adapter.rooms.keys()];
    },
    sse() {
      return sse;
    },
    recovered() {
      return recovered;
    },
    // the ids and rooms of this server's own sockets
    localSockets() {
      return [...io.of('/').sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] }));
    },
    // drops the transport of a local socket (a recoverable disconnect: "transport close")
    dropTransport({ sid }) {
      const s = io.of('/').sockets.get(sid);
      if (!s) throw new Error(`no local socket ${sid}`);
      s.conn.transport.close();
      return true;
    },
  };

  process.on('message', async (msg) => {
    const t0 = Date.now();
    try {
      const value = await commands[msg.cmd](msg);
      process.send({ id: msg.id, ok: true, value, ms: Date.now() - t0 });
    } catch (err) {
      process.send({ id: msg.id, ok: false, error: String(err && err.message), ms: Date.now() - t0 });
    }
  });
  process.on('disconnect', () => process.exit(0));
  httpServer.listen(Number(port), '127.0.0.1', () => process.send({ ready: true }));
}

main().catch((err) => {
  process.stderr.write(`node-peer: ${err.stack}\n`);
  process.exit(1);
});
