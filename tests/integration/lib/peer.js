'use strict';
/*
 * Starts lib/node-peer.js (a Node socket.io server on a Redis adapter) as a child process and
 * drives it over IPC: startPeer(redis, mode[, streamsOpts]) resolves {url, call(cmd, args),
 * describe(), stop()} once it listens. call() resolves {value, ms} and rejects on a command
 * error; every wait has a deadline, and stop() ends the child by its own handle.
 */
const { fork } = require('node:child_process');
const path = require('node:path');
const h = require('./harness');

async function startPeer(redis, mode, streamsOpts) {
  const port = await h.freePort();
  const argv = [String(port), String(redis.port), mode];
  if (streamsOpts) argv.push(JSON.stringify(streamsOpts));
  const child = fork(path.join(__dirname, 'node-peer.js'), argv, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  let seq = 0;
  const waiting = new Map();
  child.on('message', (m) => {
    if (m.ready) return;
    const w = waiting.get(m.id);
    if (w) {
      waiting.delete(m.id);
      w(m);
    }
  });
  await h.withDeadline(new Promise((resolve, reject) => {
    child.on('message', (m) => m.ready && resolve());
    child.once('exit', (code) => reject(new Error(`node peer exited ${code}: ${out}`)));
  }), 15000, 'node peer ready');
  return {
    url: `http://${h.HOST}:${port}`,
    port,
    async call(cmd, args = {}) {
      const id = ++seq;
      const reply = await h.withDeadline(new Promise((resolve) => {
        waiting.set(id, resolve);
        child.send({ ...args, id, cmd }); // args never take the reply's id
      }), 15000, `node peer ${cmd}`);
      if (!reply.ok) throw new Error(`node peer ${cmd}: ${reply.error}`);
      return reply;
    },
    describe: () => `--- node peer (${mode}, port ${port}) output ---\n${out}\n--- end ---\n`,
    async stop() {
      if (child.exitCode !== null || child.signalCode) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await h.withDeadline(gone, 5000, 'node peer exit').catch(() => child.kill('SIGKILL'));
    },
  };
}

module.exports = { startPeer };
