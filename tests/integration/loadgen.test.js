'use strict';
/*
 * bench/loadgen, `make bench`'s load generator, against servers that misbehave on purpose: what
 * it counts must stay true when the server closes a connection or the descriptors run out. Driven
 * through build/<flavour>/bench/loadgen, built here (make is incremental: usually a no-op).
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const h = require('./lib/harness');

const root = path.resolve(__dirname, '..', '..');

function loadgenBin() {
  const bin = process.env.STREAMIO_BIN;
  if (!bin) throw new Error('STREAMIO_BIN is not set');
  return path.join(path.dirname(bin), 'bench', 'loadgen');
}

test.before(() => {
  const rel = path.relative(root, loadgenBin());
  const asan = rel.split(path.sep)[1] === 'asan';
  // piped, not inherited: this process's stdout is the test runner's TAP stream
  execFileSync('make', ['-s', rel, ...(asan ? ['ASAN=1'] : [])], { cwd: root, stdio: 'pipe' });
});

/*
 * A server (Debian's Python) that prints its port, answers one upgrade request with a 101 and its
 * FIN in one segment (TCP_CORK holds the bytes until the FIN joins them), and reads to the end.
 */
const FIN_SERVER = `
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
buf = b""
while b"\\r\\n\\r\\n" not in buf:
    d = c.recv(4096)
    if not d:
        sys.exit(1)
    buf += d
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n")
c.shutdown(socket.SHUT_WR)
while c.recv(4096):
    pass
`;

// A server that closes every connection it accepts: every client of loadgen fails, soon.
const CLOSE_SERVER = `
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
print(s.getsockname()[1], flush=True)
while True:
    s.accept()[0].close()
`;

async function pyServer(script) {
  const srv = h.spawnTracked('/usr/bin/python3', ['-c', script], { name: 'python3' });
  const port = await h.waitUntil(() => Number.parseInt(srv.stdout(), 10) || 0, {
    timeout: 20000,
    message: 'the python server to listen',
  });
  return { srv, port };
}

// Runs loadgen to its end (its own --timeout bounds it); returns its JSON report and the handle.
async function runLoadgen(args, { shellPrefix = '' } = {}) {
  const cmd = `${shellPrefix}exec ${loadgenBin()} ${args.join(' ')}`;
  const lg = h.spawnTracked('/bin/sh', ['-c', cmd], { name: 'loadgen' });
  const res = await h.waitExit(lg, 180000);
  await lg.closed;
  assert.ok(res, `loadgen did not end\n${lg.describe()}`);
  const line = lg.stdout().split('\n').find((l) => l.startsWith('{'));
  return { res, report: line ? JSON.parse(line) : null, lg };
}

test('a client whose server closes right after its answer is counted failed at once', async () => {
  const { srv, port } = await pyServer(FIN_SERVER);
  try {
    const { report, lg } = await runLoadgen([
      '--mode connect', '--clients 1', '--rooms 1', `--port ${port}`, `--server-pid ${srv.pid}`,
      '--timeout 60',
    ]);
    assert.ok(report, `no report\n${lg.describe()}`);
    assert.equal(report.failed, 1, lg.describe());
    assert.equal(report.joined, 0, lg.describe());
    assert.doesNotMatch(lg.stderr(), /timeout \(\d+ s\) reached/, lg.describe());
  } finally {
    await h.stop(srv);
  }
});

test('clients that get no descriptor are counted failed, without a crash', async () => {
  const { srv, port } = await pyServer(CLOSE_SERVER);
  try {
    const n = 200000;
    const { res, report, lg } = await runLoadgen(
      ['--mode connect', `--clients ${n}`, '--rooms 1', `--port ${port}`, `--server-pid ${srv.pid}`,
        '--parallel 100000', '--timeout 60'],
      // 64 descriptors: all but a few clients find none
      { shellPrefix: 'ulimit -n 64 && ulimit -Hn 64 && ' },
    );
    assert.equal(res.signal, null, lg.describe());
    assert.ok(report, `no report\n${lg.describe()}`);
    assert.equal(report.joined, 0, lg.describe());
    assert.equal(report.failed, n, lg.describe());
  } finally {
    await h.stop(srv);
  }
});
