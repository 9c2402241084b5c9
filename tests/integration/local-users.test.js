'use strict';
// Another user of the machine (uid nobody) against the workers' local channels: there is no name
// to send a descriptor to (the audit crashed a worker with a regular file, then read a victim's
// polling requests), and binding the names a server would have used does not stop it (the audit
// kept the service down by squatting them for future master pids). Runs in a network namespace
// of its own: abstract names are per namespace, so nothing here reaches another server.
if (require('./lib/netns').enter(__filename)) return;
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./lib/harness');

const PY = '/usr/bin/python3';
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', PY, '-c'];

// Abstract unix names ("@...") whose text mentions streamio, from /proc/net/unix.
function streamioNames() {
  return fs.readFileSync('/proc/net/unix', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/)[7])
    .filter((p) => p && p.startsWith('@') && p.includes('streamio'));
}

// Sends a /dev/null descriptor with a request to every name given (and every abstract streamio
// name listed); prints how many datagrams some process accepted.
const SEND_FD = `
import array, os, socket, sys
names = set(sys.argv[1:])
for line in open('/proc/net/unix'):
    f = line.split()
    if len(f) > 7 and f[7].startswith('@') and 'streamio' in f[7]:
        names.add(f[7][1:])
fd = os.open('/dev/null', os.O_RDONLY)
sent = 0
for n in names:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendmsg([b'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\\r\\n\\r\\n'],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))], 0, '\\0' + n)
        sent += 1
    except OSError:
        pass
print(sent, flush=True)
`;

// Binds the names a master of pid argv[1] would have used, holds them, says "bound".
const SQUAT = `
import socket, sys, time
held = []
for slot in range(8):
    for kind in ('', '.b'):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind('\\0streamio.%s.%d%s' % (sys.argv[1], slot, kind))
        held.append(s)
print('bound', flush=True)
time.sleep(60)
`;

function runNobody(script, args) {
  return h.spawnTracked('setpriv', [...AS_NOBODY, script, ...args], { name: 'nobody' });
}

describe('local users and the workers\' channels', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  let squatter;
  const logs = h.stopAfter(() => ({ srv, redis }));
  afterEach(async () => {
    await h.stop(squatter, 2000);
    if (srv) await srv.stop();
    if (redis) await redis.stop();
    squatter = srv = redis = null;
  });

  it('gives another user no name to send a descriptor to', logs(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, { redis });
    const before = (await h.waitUntil(async () => {
      const b = (await h.healthRetry(srv)).body;
      return b.workers.length === 2 && b.workers.every((w) => w.pid) ? b : null;
    }, { message: '2 workers' }));
    assert.deepEqual(streamioNames(), [], 'no abstract streamio name is bound');
    const guesses = [];
    for (let slot = 0; slot < 4; slot++) guesses.push(`streamio.${srv.pid}.${slot}`, `streamio.${srv.pid}.${slot}.b`);
    const p = runNobody(SEND_FD, guesses);
    assert.equal((await h.waitExit(p, 10000)).code, 0, p.describe());
    assert.equal(p.stdout().trim(), '0', 'no datagram was accepted');
    const after = (await h.healthRetry(srv)).body;
    assert.deepEqual(after.workers.map((w) => w.pid), before.workers.map((w) => w.pid));
  }));

  it('starts and serves with every name of its pid squatted by another user', logs(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, {
      redis,
      onSpawn: async (handle) => {
        squatter = runNobody(SQUAT, [String(handle.pid)]);
        await h.waitUntil(() => squatter.stdout().includes('bound') || !squatter.running,
          { message: 'the squatter to bind' });
        assert.ok(squatter.running, squatter.describe());
        handle.proc.stdin.end('go\n');
      },
    });
    const b = await h.waitUntil(async () => {
      const r = (await h.healthRetry(srv)).body;
      return r.workersAlive === 2 && r.workers.every((w) => w.redisConnected) ? r : null;
    }, { timeout: 10000, message: 'both workers serving' });
    assert.equal(b.pid, srv.pid);
    // the workers still hand entries to each other: a client on either gets what the other read
    const room = h.uniq('squat');
    const clients = [];
    await h.spreadClients(srv, clients, { workers: 2 });
    const got = [];
    for (const c of clients) {
      await h.joinRoom(c, room);
      got.push(h.collect(c));
    }
    await redis.call('XADD', room, '*', 'event', 'e', 'data', '{"n":1}');
    await Promise.all(got.map((g) => g.waitCount(1, 10000)));
  }));
});
