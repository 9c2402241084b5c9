'use strict';
/*
 * Harness for the streamio integration tests (and scripts/bench-latency.js).
 *
 * Owns: throwaway redis-server processes, the server under test ($STREAMIO_BIN), a minimal RESP
 * client, socket.io-client sockets, and bounded waits. Every process it spawns is tracked by PID
 * and stopped by PID (SIGTERM, then SIGKILL after a deadline); a process-exit hook SIGKILLs
 * whatever a crashed test left behind. It never signals a process it did not start, except a
 * worker of a server it started (checked through /proc/<pid>/status PPid). All traffic stays on
 * 127.0.0.1 and every wait has a deadline.
 *
 * STREAMIO_ANCHOR_MODE=1 marks a run against the Node anchor (STREAMIO_BIN being a wrapper that
 * execs `node server.js`): tests of streamio-only behaviour (workers, respawn, config errors)
 * skip themselves. Never set it for streamio.
 */
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');

const HOST = '127.0.0.1';
const ANCHOR_MODE = process.env.STREAMIO_ANCHOR_MODE === '1';
const ANCHOR_SKIP = ANCHOR_MODE ? 'streamio-specific (STREAMIO_ANCHOR_MODE=1)' : false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Rejects with `label` when `promise` has not settled within `ms`.
function withDeadline(promise, ms, label) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Polls `fn` (sync or async) until it returns a truthy value; returns that value. Errors thrown
// by `fn` count as "not yet" (the last one is reported on timeout), except those marked `.fatal`,
// which end the wait at once.
async function waitUntil(fn, { timeout = 5000, interval = 50, message = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let lastErr = null;
  let lastVal;
  for (;;) {
    try {
      lastVal = await fn();
      if (lastVal) return lastVal;
    } catch (err) {
      if (err && err.fatal) throw err;
      lastErr = err;
    }
    if (Date.now() >= end) {
      const why = lastErr ? ` (last error: ${lastErr.message})` : ` (last value: ${safeJson(lastVal)})`;
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${why}`);
    }
    await sleep(interval);
  }
}

function fatal(message) {
  const err = new Error(message);
  err.fatal = true;
  return err;
}

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

// ------------------------------------------------------------------ ports

const handedOut = new Set();

// A loopback TCP port that was free a moment ago and was not handed out before by this process.
async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, HOST, () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found');
}

// ------------------------------------------------------------------ processes

const live = new Map(); // pid -> ChildProcess, everything spawned and not yet exited
const workers = new Map(); // pid -> start time, workers of our servers that /health reported

// Last resort when a test process ends with servers still running: SIGKILL them and any worker
// of theirs that is still the same process (same start time).
process.on('exit', () => {
  const kill = (pid) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  for (const pid of live.keys()) kill(pid);
  for (const [pid, start] of workers) if (startTime(pid) === start) kill(pid);
});

// Spawns a tracked process with captured output (kept to the last `keep` bytes); `stdin: 'pipe'`
// leaves its standard input open for the caller (proc.stdin); `detached` makes it the leader of
// a process group of its own (a terminal's foreground group: signal it with kill(-pid)).
function spawnTracked(cmd, args, { env, cwd, name, keep = 256 * 1024, stdin = 'ignore', detached = false } = {}) {
  const proc = spawn(cmd, args, { env, cwd, detached, stdio: [stdin, 'pipe', 'pipe'] });
  const state = { out: '', stdout: '', stderr: '', exitCode: undefined, signal: undefined };
  const append = (which, chunk) => {
    const s = chunk.toString('utf8');
    state.out += s.replace(/^(?=.)/gm, which === 'stderr' ? '[err] ' : '[out] ');
    if (state.out.length > keep) state.out = state.out.slice(-keep);
    state[which] += s;
    if (state[which].length > keep) state[which] = state[which].slice(-keep);
  };
  proc.stdout.on('data', (c) => append('stdout', c));
  proc.stderr.on('data', (c) => append('stderr', c));
  const exited = new Promise((resolve) => {
    proc.once('error', (err) => {
      state.out += `[spawn error] ${err.message}\n`;
      state.exitCode = null;
      resolve({ code: null, signal: null, error: err });
    });
    proc.once('exit', (code, signal) => {
      state.exitCode = code;
      state.signal = signal;
      if (proc.pid) live.delete(proc.pid);
      resolve({ code, signal });
    });
  });
  // 'exit' may fire before the pipes are drained: wait for both to close too.
  const closed = new Promise((resolve) => proc.once('close', resolve));
  if (proc.pid) live.set(proc.pid, proc);
  return {
    name: name || path.basename(cmd),
    proc,
    pid: proc.pid,
    exited,
    closed: Promise.race([closed, exited.then(() => sleep(500))]),
    get running() {
      return state.exitCode === undefined;
    },
    output: () => state.out,
    stdout: () => state.stdout,
    stderr: () => state.stderr,
    describe() {
      const st = state.exitCode === undefined ? 'running' : `exited code=${state.exitCode} signal=${state.signal}`;
      return `--- ${this.name} (pid ${proc.pid}, ${st}) output tail ---\n${state.out.slice(-16384)}\n--- end ---\n`;
    },
  };
}

// Waits up to `ms` for exit; returns {code, signal} or null when still running.
async function waitExit(handle, ms) {
  try {
    return await withDeadline(handle.exited, ms, `${handle.name} exit`);
  } catch {
    return null;
  }
}

/*
 * Stops a process started by this harness: SIGTERM by PID, SIGKILL after `timeout` ms. Returns
 * the exit code (null when it died of a signal, e.g. the SIGKILL fallback). Workers of a server
 * that are still alive once it exited are SIGKILLed too (only PIDs that /health reported while
 * they were its children, and only while they are the same processes).
 */
async function stop(handle, timeout = 10000) {
  if (!handle) return null;
  if (handle.running) {
    try {
      process.kill(handle.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    if (!(await waitExit(handle, timeout))) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  const res = (await waitExit(handle, 5000)) || { code: null };
  if (!handle.running) await handle.closed;
  if (handle.workerPids && handle.workerPids.size) {
    // A master that died (or misbehaved) may leave workers behind: give them a moment to exit,
    // then SIGKILL those still alive that are the very processes /health reported (same start
    // time, so a recycled PID is never hit).
    const leftover = () => [...handle.workerPids].filter(([pid, start]) => startTime(pid) === start);
    await waitUntil(() => leftover().length === 0, { timeout: 2000, message: 'workers to exit' })
      .catch(() => {});
    for (const [pid] of leftover()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  return res.code;
}

// Start time (clock ticks since boot) of a live, non-zombie process; null otherwise.
function startTime(pid) {
  let stat;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return null;
  return fields[19]; // field 22 of stat(5); fields[] starts at field 3
}

function procStatus(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
}

function parentPid(pid) {
  const st = procStatus(pid);
  const m = st && /^PPid:\s+(\d+)/m.exec(st);
  return m ? Number(m[1]) : null;
}

// True while `pid` exists and is not a zombie.
function processAlive(pid) {
  const st = procStatus(pid);
  if (!st) return false;
  return !/^State:\s+Z/m.test(st);
}

// ------------------------------------------------------------------ redis

/*
 * Minimal RESP2 client: pipelined commands over one TCP connection, replies matched in order.
 * Bulk strings come back as JS strings (utf8), errors reject with an Error whose .redis is true.
 */
class RedisClient {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.dead = null;
    sock.setNoDelay(true);
    sock.on('data', (chunk) => this._onData(chunk));
    sock.on('error', (err) => this._fail(err));
    sock.on('close', () => this._fail(new Error('redis connection closed')));
  }

  // `localAddress`: another loopback source address (127.0.0.2...), e.g. to stay outside a
  // partition cut between 127.0.0.1 and Redis.
  static connect(port, { host = HOST, timeout = 5000, localAddress } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host, localAddress });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`redis connect ${host}:${port} timed out`));
      }, timeout);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new RedisClient(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  // Sends one command; resolves with its reply. Bounded: rejects after `timeout` ms (and then
  // drops the connection, since replies could no longer be matched).
  call(...args) {
    return this.callTimeout(10000, ...args);
  }

  callTimeout(timeout, ...args) {
    if (this.dead) return Promise.reject(this.dead);
    let out = `*${args.length}\r\n`;
    for (const a of args) {
      const s = String(a);
      out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        this._fail(new Error(`redis command ${args[0]} timed out after ${timeout} ms`));
      }, timeout);
      this.pending.push(entry);
      this.sock.write(out);
    });
  }

  close() {
    this.dead = this.dead || new Error('redis client closed');
    this.sock.destroy();
    this._fail(this.dead);
  }

  _fail(err) {
    this.dead = this.dead || err;
    const p = this.pending;
    this.pending = [];
    for (const e of p) {
      clearTimeout(e.timer);
      e.reject(err);
    }
  }

  _onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      let r;
      try {
        r = parseResp(this.buf, 0);
      } catch (err) {
        this._fail(err);
        this.sock.destroy();
        return;
      }
      if (!r) return;
      this.buf = this.buf.subarray(r.end);
      const e = this.pending.shift();
      if (!e) {
        // pub/sub pushes (after SUBSCRIBE/PSUBSCRIBE) go to onPush when the caller set one
        if (this.onPush) this.onPush(r.value);
        continue;
      }
      clearTimeout(e.timer);
      if (r.value instanceof Error) e.reject(r.value);
      else e.resolve(r.value);
    }
  }
}

// Parses one RESP2 value at `off`; returns {value, end} or null when incomplete.
function parseResp(buf, off) {
  if (off >= buf.length) return null;
  const nl = buf.indexOf('\r\n', off);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[off]);
  const line = buf.toString('utf8', off + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-': {
      const err = new Error(line);
      err.redis = true;
      return { value: err, end: next };
    }
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const arr = new Array(n);
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parseResp(buf, pos);
        if (!r) return null;
        arr[i] = r.value;
        pos = r.end;
      }
      return { value: arr, end: pos };
    }
    default:
      throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
  }
}

/*
 * Starts `redis-server` on `port` (default: a free loopback port) with no persistence, in a fresh
 * temp dir, and waits for PING. Returns {port, client, call(), handle, stop()}; stop() shuts it
 * down and removes the dir.
 */
// `args`: extra redis-server options, e.g. ['--rename-command', 'CONFIG', '']
async function startRedis({ timeout = 10000, port: wanted, args = [] } = {}) {
  const port = wanted || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-it-redis-'));
  const handle = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir,
      '--daemonize', 'no', '--protected-mode', 'yes', ...args],
    { name: `redis-server:${port}` },
  );
  let client = null;
  try {
    client = await waitUntil(async () => {
      if (!handle.running) throw fatal('redis-server exited');
      const c = await RedisClient.connect(port, { timeout: 1000 });
      try {
        if ((await c.callTimeout(1000, 'PING')) === 'PONG') return c;
      } catch (err) {
        c.close();
        throw err;
      }
      c.close();
      return null;
    }, { timeout, interval: 50, message: `redis-server on ${port} to answer PING` });
  } catch (err) {
    await stop(handle, 2000);
    fs.rmSync(dir, { recursive: true, force: true });
    err.message += `\n${handle.describe()}`;
    throw err;
  }
  return {
    port,
    client,
    handle,
    call: (...a) => client.call(...a),
    async stop() {
      if (client) client.close();
      const code = await stop(handle, 5000);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

// ------------------------------------------------------------------ server under test

// Configuration variables of the seed contract and of streamio: never inherited from the shell
// running the tests, so each test controls them fully.
const CONFIG_VARS = [
  'REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'REDIS_USERNAME', 'REDIS_DB', 'HOST', 'PORT', 'POOL_SIZE',
  'MAX_POOLS', 'SCAN_COUNT', 'MAX_STREAMS_PER_READ', 'MAX_CONCURRENT_POOLS', 'BATCH_DELAY',
  'MAX_MESSAGES_BATCH', 'READ_BLOCK_MS', 'DISCOVERY_INTERVAL', 'STREAM_PATTERN', 'STREAM_EXCLUDE',
  'STREAM_CONSUMER_GROUP', 'STREAM_INACTIVE_TTL', 'STREAM_DELETE_POLICY', 'STREAM_RETAIN_MS',
  'STREAM_KEYSPACE_EVENTS', 'STREAM_CLAIM_IDLE_MS', 'PRIORITY_STREAMS', 'CLUSTER_ENABLED',
  'CLUSTER_WORKERS', 'SOCKETIO_REDIS_ADAPTER', 'SOCKETIO_REDIS_KEY', 'SOCKETIO_TRANSPORTS',
  'SOCKETIO_REDIS_STREAM_NAME', 'SOCKETIO_REDIS_STREAM_COUNT', 'SOCKETIO_REDIS_STREAM_MAXLEN',
  'STREAMIO_INTERNAL_ADDRESS',
  'MAX_ROOMS_PER_SOCKET', 'SOCKETIO_PING_INTERVAL', 'SOCKETIO_PING_TIMEOUT',
  'SOCKETIO_CONNECT_TIMEOUT', 'SOCKETIO_MAX_HTTP_BUFFER_SIZE', 'SHUTDOWN_TIMEOUT', 'LOG_LEVEL',
  'CONNECTION_RECOVERY', 'CONNECTION_RECOVERY_WINDOW_MS',
];

function baseEnv() {
  const env = { ...process.env };
  for (const k of CONFIG_VARS) delete env[k];
  return env;
}

function streamioBin() {
  const bin = process.env.STREAMIO_BIN;
  if (!bin) throw new Error('STREAMIO_BIN is not set (scripts/run-integration.sh BIN sets it)');
  return bin;
}

// Spawns $STREAMIO_BIN with exactly `env` on top of the stripped environment; does not wait.
function spawnStreamio(env, { name = 'streamio' } = {}) {
  return spawnTracked(streamioBin(), [], { env: { ...baseEnv(), ...env }, name });
}

/*
 * Starts a server process (`cmd args`) listening on HOST:port and waits until GET /health
 * answers 200. Returns a server handle {pid, port, url, handle, health(), stop(), describe()}.
 * Throws (with the captured output) when it exits or does not get ready within `timeout`.
 * `onSpawn(handle)` (optional, awaited) runs first; with it the process's stdin is a pipe.
 */
async function startServer({ cmd, args = [], env, port, name, timeout = 20000, workers = 0, onSpawn }) {
  const handle = spawnTracked(cmd, args, { env, name, stdin: onSpawn ? 'pipe' : 'ignore' });
  const url = `http://${HOST}:${port}`;
  const srv = {
    handle,
    pid: handle.pid,
    port,
    url,
    workerPids: new Map(), // pid -> start time, of the children /health reported
    health: (o) => getHealth(url, o).then((r) => {
      noteWorkers(srv, r);
      return r;
    }),
    describe: () => handle.describe(),
    async stop(ms = 10000) {
      handle.workerPids = srv.workerPids;
      return stop(handle, ms);
    },
  };
  try {
    if (onSpawn) await onSpawn(handle);
    await waitUntil(async () => {
      if (!handle.running) throw fatal(`${handle.name} exited before getting ready`);
      const r = await srv.health({ timeout: 1000 });
      // /health lists a worker once its setup is done: wait for all of them
      return r.status === 200 && (!workers || !r.body || !Array.isArray(r.body.workers) ||
        r.body.workers.length === workers);
    }, { timeout, interval: 100, message: `${handle.name} GET /health 200 on port ${port} with ${workers || 'its'} workers` });
  } catch (err) {
    await stop(handle, 3000);
    err.message += `\n${handle.describe()}`;
    throw err;
  }
  return srv;
}

/*
 * Starts $STREAMIO_BIN against `redis` with the contract env (CLUSTER_WORKERS=1, LOG_LEVEL=info,
 * DISCOVERY_INTERVAL=500 unless overridden by `env`) on a free port, waits for /health 200.
 * `onSpawn(handle)`: the server's pid is known before it runs (handle.pid); it starts once
 * onSpawn has resolved and written a line to handle.proc.stdin.
 */
async function startStreamio(env = {}, { redis, timeout, onSpawn } = {}) {
  const port = await freePort();
  const full = {
    ...baseEnv(),
    REDIS_HOST: HOST,
    REDIS_PORT: String(redis ? redis.port : env.REDIS_PORT),
    HOST,
    PORT: String(port),
    CLUSTER_WORKERS: '1',
    LOG_LEVEL: 'info',
    DISCOVERY_INTERVAL: '500',
    ...env,
  };
  const workers = full.CLUSTER_ENABLED === 'false' ? 1 : Number(full.CLUSTER_WORKERS) || 0;
  // with onSpawn, a shell waits for a line on stdin, then execs the server under its own pid
  const cmd = onSpawn ? 'sh' : streamioBin();
  const args = onSpawn ? ['-c', 'read _ && exec "$0"', streamioBin()] : [];
  return startServer({ cmd, args, env: full, port: Number(full.PORT), name: 'streamio', timeout, workers, onSpawn });
}

// Remembers the workers a /health answer lists (only real children of the server process).
function noteWorkers(srv, r) {
  if (!r || !r.body || !Array.isArray(r.body.workers)) return;
  for (const w of r.body.workers) {
    if (!w || !Number.isInteger(w.pid) || srv.workerPids.has(w.pid)) continue;
    if (parentPid(w.pid) !== srv.pid) continue;
    const st = startTime(w.pid);
    if (st) {
      srv.workerPids.set(w.pid, st);
      workers.set(w.pid, st);
    }
  }
}

// GET /health: resolves {status, body (parsed JSON or null), raw}; rejects on network error/timeout.
function getHealth(url, { timeout = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/health`, { agent: false, timeout }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        raw += d;
      });
      res.on('end', () => {
        let body = null;
        try {
          body = JSON.parse(raw);
        } catch {
          /* not JSON: body stays null */
        }
        resolve({ status: res.statusCode, headers: res.headers, body, raw });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}/health timed out after ${timeout} ms`)));
    req.on('error', reject);
  });
}

// GET /health of `target` (a server handle or a base URL) with up to `attempts` tries `gap` ms
// apart; resolves the first 200 JSON response.
async function healthRetry(target, { attempts = 5, gap = 100, timeout = 1000 } = {}) {
  const url = typeof target === 'string' ? target : target.url;
  let last;
  for (let i = 0; i < attempts; i++) {
    try {
      const r = await getHealth(url, { timeout });
      if (typeof target !== 'string') noteWorkers(target, r);
      if (r.status === 200 && r.body) return r;
      last = new Error(`status ${r.status}: ${r.raw.slice(0, 200)}`);
    } catch (err) {
      last = err;
    }
    await sleep(gap);
  }
  throw new Error(`GET ${url}/health failed ${attempts} times: ${last && last.message}`);
}

// The server total (the unlabelled series) of the family `name` on srv's /metrics; 0 without one.
async function metricTotal(srv, name) {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${srv.url}/metrics`)).text());
  return m ? Number(m[1]) : 0;
}

// Waits until streamio's master has completed n more discovery passes than when called
// (streamio_scan_cycles_total on /metrics): with n >= 2, a whole pass began after the call, so
// discovery has seen whatever Redis held by then.
async function scanPasses(srv, n, { timeout = 10000 } = {}) {
  const cycles = () => metricTotal(srv, 'streamio_scan_cycles_total');
  const before = await cycles();
  await waitUntil(async () => (await cycles()) >= before + n,
    { timeout, message: `${n} more discovery passes (from ${before})` });
}

// Waits until exactly n long-polling GETs are held open by the server, its workers summed
// (streamio_polling_held_requests on /metrics): a GET sent before has been parked by the worker
// that owns its session, not still on its way there. The Node anchor exports no such gauge: a
// short pause stands in for it there.
async function waitHeldPolls(srv, n, { timeout = 10000 } = {}) {
  if (ANCHOR_MODE) return sleep(100);
  return waitUntil(async () => (await metricTotal(srv, 'streamio_polling_held_requests')) === n,
    { timeout, interval: 20, message: `${n} held long-polling GET(s)` });
}

// Runs streamioctl (beside $STREAMIO_BIN) against the control socket `sock`, asynchronously so
// the server runs meanwhile; resolves {code, stdout, stderr}.
function streamioctl(sock, ...args) {
  const bin = path.join(path.dirname(streamioBin()), 'streamioctl');
  return new Promise((resolve) => {
    execFile(bin, ['--socket', sock, ...args], { timeout: 15000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// SIGKILLs `pid` after checking that it is a child of the server `srv` started by this harness.
function killWorker(srv, pid, signal = 'SIGKILL') {
  const ppid = parentPid(pid);
  if (ppid !== srv.pid) throw new Error(`pid ${pid} is not a child of server pid ${srv.pid} (PPid ${ppid})`);
  process.kill(pid, signal);
}

// ------------------------------------------------------------------ socket.io clients

const openSockets = new Set();

// Connects a websocket-only socket.io client; resolves once 'connect' fired.
function connectClient(url, { timeout = 5000, ...opts } = {}) {
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout,
    ...opts,
  });
  openSockets.add(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`socket.io connect to ${url} timed out after ${timeout} ms`));
    }, timeout + 500);
    // each handler removes the other: a later reconnect's connect_error must not close a
    // socket that connected (it would stop reconnecting for good)
    const onConnect = () => {
      clearTimeout(timer);
      socket.off('connect_error', onError);
      resolve(socket);
    };
    const onError = (err) => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.close();
      reject(new Error(`socket.io connect to ${url} failed: ${err.message}`));
    };
    socket.once('connect', onConnect);
    socket.once('connect_error', onError);
  });
}

// Connects `n` clients concurrently (in batches of `batch`).
async function connectClients(url, n, { batch = 25, ...opts } = {}) {
  const out = [];
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    out.push(...(await Promise.all(Array.from({ length: k }, () => connectClient(url, opts)))));
  }
  return out;
}

// Opens clients `step` at a time (pushed onto `clients`) until there are at least `min` and every
// worker of srv holds some, after waiting for all `workers` to be up and linked to Redis (else
// the first worker up may take every client). Gives up after `rounds` steps; returns the last
// /health body, for the caller to assert on.
async function spreadClients(srv, clients, { workers = 2, step = 10, min = 0, rounds = 20 } = {}) {
  await waitUntil(async () => {
    const ws = (await healthRetry(srv)).body.workers;
    return Array.isArray(ws) && ws.length === workers && ws.every((w) => w.redisConnected);
  }, { timeout: 15000, message: `${workers} workers up` });
  let body;
  for (let round = 0; round < rounds; round++) {
    clients.push(...(await connectClients(srv.url, step)));
    body = (await waitUntil(async () => {
      const r = await healthRetry(srv);
      const sum = r.body.workers.reduce((a, w) => a + w.connectedClients, 0);
      return sum === clients.length && r.body.connectedClients === clients.length ? r : null;
    }, { timeout: 10000, message: `/health to count ${clients.length} clients` })).body;
    if (clients.length >= min && body.workers.every((w) => w.connectedClients > 0)) break;
  }
  return body;
}

function closeClient(socket) {
  openSockets.delete(socket);
  socket.close();
}

function closeAllClients() {
  for (const s of openSockets) s.close();
  openSockets.clear();
}

// Emits `event` with `args` and resolves with the ack's first argument (bounded).
function emitAck(socket, event, ...args) {
  return emitAckTimeout(socket, 3000, event, ...args);
}

function emitAckTimeout(socket, ms, event, ...args) {
  return socket.timeout(ms).emitWithAck(event, ...args);
}

async function joinRoom(socket, roomId) {
  const ack = await emitAck(socket, 'join-room', roomId);
  if (!ack || ack.ok !== true) throw new Error(`join-room ${roomId} refused: ${safeJson(ack)}`);
  return ack;
}

/*
 * Records every `event` a socket receives. `waitCount(n, ms)` resolves once at least n were seen;
 * `waitFor(pred, ms)` resolves with the first matching item (already seen or future).
 */
function collect(socket, event = 'room:message') {
  const items = [];
  const waiters = new Set();
  socket.on(event, (payload) => {
    items.push(payload);
    for (const w of waiters) w();
  });
  const wait = (check, ms, label) => {
    let fn;
    const p = new Promise((resolve) => {
      fn = () => {
        const v = check();
        if (v !== undefined) resolve(v);
      };
      waiters.add(fn);
      fn();
    });
    return withDeadline(p, ms, label).finally(() => waiters.delete(fn));
  };
  return {
    items,
    waitCount(n, ms = 10000) {
      return wait(() => (items.length >= n ? items : undefined), ms,
        `${n} '${event}' events (got ${items.length})`);
    },
    waitFor(pred, ms = 10000) {
      return wait(() => items.find(pred), ms, `a matching '${event}' event (got ${items.length})`);
    },
  };
}

/*
 * Test-body wrapper: on failure, prints the captured output of the server handles that
 * `getHandles()` returns (late-bound, since they are created in `before`) to stderr.
 */
function withLogs(getHandles, fn) {
  return async (t) => {
    try {
      return await fn(t);
    } catch (err) {
      const hs = [].concat(getHandles() || []).filter(Boolean);
      for (const h of hs) process.stderr.write(h.describe());
      throw err;
    }
  };
}

/*
 * Inside a describe(): registers the after() hook that closes every client, then stops the
 * server(s) and the redis-server that `get()` returns ({srv, redis}: srv one handle or a list
 * stopped in its order, e.g. streamio servers and Node peers; any may be unset by then), and
 * returns the withLogs wrapper for those servers' test bodies.
 */
function stopAfter(get) {
  require('node:test').after(async () => {
    closeAllClients();
    const { srv, redis } = get();
    for (const s of [].concat(srv || [])) if (s) await s.stop();
    if (redis) await redis.stop();
  });
  return (fn) => withLogs(() => get().srv, fn);
}

/*
 * Inside a describe(): streamio servers sharing the redis-server `getRedis()` returns, each
 * started with `base` and its own env. Stops them, then that redis-server, after the suite
 * (stopAfter). Returns {servers (the running ones), server(env), stopAll(), logs}.
 */
function serverGroup(getRedis, base = {}) {
  const servers = [];
  return {
    servers,
    logs: stopAfter(() => ({ srv: servers, redis: getRedis() })),
    async server(env = {}) {
      const s = await startStreamio({ ...base, ...env }, { redis: getRedis() });
      servers.push(s);
      return s;
    },
    async stopAll() {
      closeAllClients();
      while (servers.length) await servers.pop().stop();
    },
  };
}

// Unique-per-run name, so streams/rooms of one test never collide with another's.
/*
 * Headless Chromium (NULL when not installed) and the page it runs: an HTTP server on another
 * origin than the server under test, serving the socket.io browser bundle, `page.html` at every
 * other path, and collecting what the page reports (`fetch('/report?' + JSON)`) in `events`.
 */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) || null;

async function startTestPage() {
  const bundle = path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist/socket.io.min.js');
  const page = { html: '', events: [] };
  page.server = http.createServer((req, res) => {
    if (req.url === '/socket.io.min.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      res.end(fs.readFileSync(bundle));
    } else if (req.url.startsWith('/report?')) {
      page.events.push(JSON.parse(decodeURIComponent(req.url.slice(8))));
      res.end('ok');
    } else {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(page.html);
    }
  });
  await new Promise((resolve) => page.server.listen(0, HOST, resolve));
  page.url = `http://${HOST}:${page.server.address().port}`;
  page.close = () => page.server.close();
  return page;
}

// Runs fn(chrome) while headless Chromium shows `url` (a fresh profile), then stops it.
async function withChromium(url, fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, url];
  const chrome = spawnTracked(CHROMIUM, args, { name: 'chromium' });
  try {
    return await fn(chrome);
  } finally {
    await stop(chrome);
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

let seq = 0;
// The end of what some streams had for a client, without sleeping for it: appends an entry of
// event END_EVENT to each stream (a room of the client) and waits until `inbox` (a collect() of
// room:message) holds every one. A stream's entries reach a client in stream order, so all it
// sent from those streams before (a duplicate on that path among them) has arrived by then.
// Resolves inbox's items without the markers.
const END_EVENT = 'test:end';
async function untilEnd(redis, inbox, streams, ms = 10000) {
  const ends = new Map();
  for (const s of streams) ends.set(s, await redis.call('XADD', s, '*', 'event', END_EVENT));
  const isEnd = (m) => m && m.event === END_EVENT;
  await waitUntil(() => inbox.items.filter((m) => isEnd(m) && ends.get(m.roomId) === m.messageId).length === ends.size,
    { timeout: ms, interval: 20, message: `the end marker of ${streams.length} stream(s)` });
  return inbox.items.filter((m) => !isEnd(m));
}

function uniq(prefix) {
  seq += 1;
  return `${prefix}.${process.pid}.${seq}`;
}

module.exports = {
  HOST,
  ANCHOR_MODE,
  ANCHOR_SKIP,
  sleep,
  withDeadline,
  waitUntil,
  freePort,
  spawnTracked,
  spawnStreamio,
  waitExit,
  stop,
  processAlive,
  parentPid,
  RedisClient,
  startRedis,
  baseEnv,
  startServer,
  startStreamio,
  getHealth,
  healthRetry,
  scanPasses,
  waitHeldPolls,
  killWorker,
  streamioctl,
  connectClient,
  connectClients,
  closeClient,
  closeAllClients,
  emitAck,
  emitAckTimeout,
  joinRoom,
  collect,
  untilEnd,
  withLogs,
  stopAfter,
  serverGroup,
  spreadClients,
  CHROMIUM,
  startTestPage,
  withChromium,
  uniq,
};
