'use strict';
/*
 * A test NOTIFY_SOCKET: a unix datagram socket bound by a small python3 helper (Node has no unix
 * datagram sockets), each datagram reported as one JSON line. Lets the tests check streamio's
 * side of systemd's Type=notify protocol (READY, RELOADING, STOPPING, STATUS, WATCHDOG).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const SCRIPT = [
  'import json, socket, sys',
  's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  's.bind(sys.argv[1])',
  'print("BOUND", flush=True)',
  'while True:',
  '    d = s.recv(65536)',
  '    print(json.dumps(d.decode("utf-8", "replace")), flush=True)',
].join('\n');

// Starts a listener; resolves {path, messages: [{at, text, fields}], waitFor(pred, ms), stop()}.
async function startNotifySocket() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-notify-'));
  const sockPath = path.join(dir, 'notify.sock');
  const proc = h.spawnTracked('python3', ['-c', SCRIPT, sockPath], { name: 'notify-socket' });
  const messages = [];
  let seen = 0;
  const parse = () => {
    const lines = proc.stdout().split('\n');
    for (; seen < lines.length - 1; seen++) {
      const l = lines[seen];
      if (l === 'BOUND' || !l) continue;
      const text = JSON.parse(l);
      const fields = {};
      for (const kv of text.split('\n')) {
        const i = kv.indexOf('=');
        if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
      }
      messages.push({ at: Date.now(), text, fields });
    }
  };
  await h.waitUntil(() => { if (!proc.running) throw new Error("notify helper exited"); return proc.stdout().includes("BOUND"); },
    { timeout: 30000, message: 'the notify socket to be bound' });
  return {
    path: sockPath,
    messages,
    poll() {
      parse();
      return messages;
    },
    // Resolves with the first message (from index `from`) for which pred(fields, text) holds.
    async waitFor(pred, { timeout = 10000, from = 0, message = 'a notify message' } = {}) {
      return h.waitUntil(() => {
        parse();
        return messages.slice(from).find((m) => pred(m.fields, m.text));
      }, { timeout, interval: 25, message: `${message} (got ${JSON.stringify(messages.map((m) => m.text))})` });
    },
    async stop() {
      await h.stop(proc, 2000);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startNotifySocket };
