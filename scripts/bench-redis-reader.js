#!/usr/bin/env node
'use strict';
/*
 * What a reader's commands cost Redis, counted in instructions (issue 16 §1, "Redis CPU per entry
 * no higher than Node's"). On this shared box Redis' CPU from /proc moves by ±30 % between runs
 * of the same paced load, more than the differences to be measured; callgrind's instruction count
 * of the redis-server process does not depend on the box's load.
 *
 *   node scripts/bench-redis-reader.js [--entries 8000] [--streams 100] [--per-window 20,40]
 *                                      [--patterns xadd,streamio,...]
 *
 * Each pattern runs against its own redis-server under `valgrind --tool=callgrind` (Debian's
 * valgrind; not needed by anything else), with the command stream a reader sends in a paced load:
 * per 10 ms window, --per-window entries XADDed round-robin to --streams streams (the bench
 * producer's layout: 20 a window is fanout-2000, 40 is fanout-4000), then the window's reads and
 * acknowledgements, each window's commands pipelined in one write. No server under test runs: the
 * patterns are the commands streamio and the seed's Node server send (docs/perf-reader.md §8).
 *   xadd            the producer alone (subtracted from every other pattern)
 *   streamio        XREADGROUP GROUP g c COUNT 100 STREAMS <every stream> > ..., then XACK + XDEL
 *                   per stream of what it returned (the default lanes)
 *   streamio-dirty  the same, naming only the streams that got entries (STREAM_KEYSPACE_EVENTS=true)
 *   streamio-lua    the read, then one EVALSHA per window doing every stream's XACK + XDEL
 *   streamio-late   XDEL per window, XACK per stream every 10 windows (fewer, larger XACKs)
 *   streamio-defer  XACK + XDEL per stream every 4 windows
 *   streamio-noack  XREADGROUP ... NOACK, then XDEL per stream: no pending list and no XACK (what
 *                   the consumer group's redelivery guarantee costs; not something streamio does)
 *   node            XREAD COUNT 100 STREAMS <every stream> <last ids>, then XDEL per stream (the
 *                   seed), every window: a Node server that keeps up
 *   node-lag10      the same every 10th window: a Node server ~100 ms behind, as at 4000/s
 * Prints, per pattern and window size, Redis instructions per entry above the xadd pattern.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const bench = require('./lib/bench-common');

const log = bench.logger('bench-redis-reader');
const PATTERNS = ['xadd', 'streamio', 'streamio-dirty', 'streamio-lua', 'streamio-late', 'streamio-defer',
  'streamio-noack', 'node', 'node-lag10'];

const o = bench.parseArgs('bench-redis-reader', 'node scripts/bench-redis-reader.js [--entries N] '
  + '[--streams N] [--per-window N,N] [--patterns a,b]', process.argv.slice(2),
{ entries: 8000, streams: 100, windows: [20, 40], patterns: PATTERNS }, {
  '--entries': { key: 'entries', min: 100, max: 1000000 },
  '--streams': { key: 'streams', min: 1, max: 10000 },
  '--per-window': { key: 'windows', list: ['1', '2', '5', '10', '20', '40', '80', '200', '400'] },
  '--patterns': { key: 'patterns', list: PATTERNS },
});
o.windows = o.windows.map(Number);
if (!o.patterns.includes('xadd')) o.patterns.unshift('xadd');

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  o.usage('needs valgrind (apt-get install valgrind)');
}

const h = bench.loadHarness(log);
const GROUP = 'streamio';
const CONSUMER = 'bench:3000:0';
// XACK + XDEL of every stream named in KEYS: ARGV = group, then per key a count and its ids
const ACKDEL = `local a = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  local ids = {unpack(ARGV, a + 1, a + n)}
  redis.call('XACK', KEYS[i], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[i], unpack(ids))
  a = a + n + 1
end
return 0`;

// Sends cmds in one write; resolves with their replies.
function pipeline(client, cmds) {
  client.sock.cork();
  const p = cmds.map((c) => client.call(...c));
  client.sock.uncork();
  return Promise.all(p);
}

// Instructions the redis-server process ran for `pattern`, from callgrind's totals.
async function run(pattern, perWindow) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-redis-reader-'));
  const out = path.join(dir, 'callgrind.out');
  const port = await h.freePort();
  const handle = h.spawnTracked('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`,
    'redis-server', '--port', String(port), '--bind', h.HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, '--hz', '1'], { name: `redis-server:${port} (callgrind)` });
  let client = null;
  try {
    client = await h.waitUntil(async () => {
      if (!handle.running) throw Object.assign(new Error('redis-server exited'), { fatal: true });
      const c = await h.RedisClient.connect(port, { timeout: 2000 });
      if ((await c.callTimeout(5000, 'PING')) === 'PONG') return c;
      c.close();
      return null;
    }, { timeout: 60000, interval: 200, message: 'redis-server under callgrind to answer PING' });
    const names = Array.from({ length: o.streams }, (_, i) => `bench.r${i}`);
    const sha = await client.call('SCRIPT', 'LOAD', ACKDEL);
    await pipeline(client, names.map((n) => ['XGROUP', 'CREATE', n, GROUP, '0', 'MKSTREAM']));
    const last = new Map(names.map((n) => [n, '0-0']));
    const unacked = new Map(); // streamio-late: XDELed, XACK due; streamio-defer: both due
    const windows = Math.ceil(o.entries / perWindow);
    const acks = () => {
      const cmds = [];
      for (const [s, ids] of unacked) {
        cmds.push(['XACK', s, GROUP, ...ids]);
        if (pattern === 'streamio-defer') cmds.push(['XDEL', s, ...ids]);
      }
      unacked.clear();
      return cmds;
    };
    let seq = 0;
    for (let w = 0; w < windows; w++) {
      const adds = [];
      const dirty = new Set();
      for (let i = 0; i < perWindow; i++, seq++) {
        const s = names[seq % names.length];
        dirty.add(s);
        adds.push(['XADD', s, '*', 'event', 'bench', 'b', `${Math.floor(seq / names.length)}:1733560000000000`,
          'data', '{"n":1,"text":"hello"}']);
      }
      await pipeline(client, adds);
      if (pattern === 'xadd') continue;
      if (pattern.startsWith('node')) {
        if (pattern === 'node-lag10' && (w + 1) % 10 && w + 1 < windows) continue;
        const rep = await client.call('XREAD', 'COUNT', '100', 'STREAMS', ...names, ...names.map((n) => last.get(n)));
        const cmds = [];
        for (const [s, entries] of rep || []) {
          const ids = entries.map((e) => e[0]);
          last.set(s, ids[ids.length - 1]);
          cmds.push(['XDEL', s, ...ids]);
        }
        await pipeline(client, cmds);
        continue;
      }
      const keys = pattern === 'streamio-dirty' ? [...dirty] : names;
      const rep = await client.call('XREADGROUP', 'GROUP', GROUP, CONSUMER, 'COUNT', '100',
        ...(pattern === 'streamio-noack' ? ['NOACK'] : []), 'STREAMS', ...keys, ...keys.map(() => '>'));
      const got = (rep || []).map(([s, entries]) => [s, entries.map((e) => e[0])]);
      let cmds = [];
      if (pattern === 'streamio-lua') {
        const args = [GROUP];
        for (const [, ids] of got) args.push(String(ids.length), ...ids);
        cmds.push(['EVALSHA', sha, String(got.length), ...got.map(([s]) => s), ...args]);
      } else if (pattern === 'streamio-late' || pattern === 'streamio-defer') {
        for (const [s, ids] of got) {
          unacked.set(s, (unacked.get(s) || []).concat(ids));
          if (pattern === 'streamio-late') cmds.push(['XDEL', s, ...ids]);
        }
        const every = pattern === 'streamio-late' ? 10 : 4;
        if ((w + 1) % every === 0 || w + 1 === windows) cmds = cmds.concat(acks());
      } else if (pattern === 'streamio-noack') {
        for (const [s, ids] of got) cmds.push(['XDEL', s, ...ids]);
      } else {
        for (const [s, ids] of got) cmds.push(['XACK', s, GROUP, ...ids], ['XDEL', s, ...ids]);
      }
      await pipeline(client, cmds);
    }
    let left = 0;
    for (const n of names) left += Number(await client.call('XLEN', n));
    const pending = pattern.startsWith('streamio')
      ? (await pipeline(client, names.map((n) => ['XPENDING', n, GROUP]))).reduce((a, r) => a + Number(r[0]), 0)
      : 0;
    if (pattern !== 'xadd' && (left || pending)) throw new Error(`${pattern}: ${left} entries left, ${pending} pending`);
    client.close();
    client = null;
    await h.stop(handle, 60000);
    const text = fs.readFileSync(out, 'utf8');
    const m = text.match(/^(?:summary|totals): (\d+)/m);
    if (!m) throw new Error(`no totals in ${out}`);
    return { instructions: Number(m[1]), entries: windows * perWindow };
  } finally {
    if (client) client.close();
    await h.stop(handle, 60000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const rows = [];
  for (const pw of o.windows) {
    let base = null;
    for (const pattern of o.patterns) {
      const r = await run(pattern, pw);
      if (pattern === 'xadd') base = r;
      const perEntry = (r.instructions - base.instructions) / r.entries;
      const row = { pattern, per_window: pw, entries: r.entries, redis_instructions: r.instructions,
        reader_instructions_per_entry: pattern === 'xadd' ? r.instructions / r.entries : Math.round(perEntry) };
      rows.push(row);
      log(`${String(pw).padStart(3)} a window  ${pattern.padEnd(15)} ${pattern === 'xadd'
        ? `${Math.round(r.instructions / r.entries)} instructions per entry (the producer alone, with start-up)`
        : `${Math.round(perEntry)} instructions per entry above xadd`}`);
    }
  }
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
})().catch((err) => {
  process.stderr.write(`bench-redis-reader: ${err.stack || err}\n`);
  process.exit(1);
});
