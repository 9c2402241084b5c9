'use strict';
/*
 * The Redis layer (common/redis) against real Redis topologies from Debian's packages: a 6-node
 * Redis Cluster, a primary + replica + 3 sentinels, and a TLS-only server with certificates made
 * at test time. Driven through build/<flavour>/tests/redis_probe (tests/integration/
 * redis_probe.c), which loads its configuration from the environment exactly like streamio.
 */
const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const path = require('node:path');
const h = require('./lib/harness');

const { HOST, ANCHOR_SKIP, withDeadline, RedisClient } = h;
// Failovers, promotions and slot moves take seconds on a loaded box: a generous default deadline.
const waitUntil = (fn, opts = {}) => h.waitUntil(fn, { timeout: 30000, ...opts });
const { startNode, startCluster, startSentinels, startTlsRedis } = require('./lib/redis-topologies');

const root = path.resolve(__dirname, '..', '..');

function probeBin() {
  const bin = process.env.STREAMIO_BIN;
  if (!bin) throw new Error('STREAMIO_BIN is not set');
  return path.join(path.dirname(bin), 'tests', 'redis_probe');
}

// Builds the probe of the flavour under test (make is incremental: usually a no-op).
function buildProbe() {
  const rel = path.relative(root, probeBin());
  const asan = rel.split(path.sep)[1] === 'asan';
  // piped, not inherited: this process's stdout is the test runner's TAP stream
  execFileSync('make', ['-s', rel, ...(asan ? ['ASAN=1'] : [])], { cwd: root, stdio: 'pipe' });
}

// The environment of the probe: nothing Redis-related inherited from the shell.
function probeEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('REDIS_') && !k.startsWith('STREAM') && k !== 'LOG_LEVEL') env[k] = v;
  }
  return { ...env, ...extra };
}

const probes = new Set();
process.on('exit', () => {
  for (const p of probes) {
    try {
      p.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

class Probe {
  constructor(env) {
    this.proc = spawn(probeBin(), [], { env: probeEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    this.events = [];
    this.answers = new Map();
    this.nextId = 1;
    this.stderr = '';
    this.buf = '';
    this.pid = this.proc.pid;
    this.exitCode = undefined;
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      this.exitCode = code;
      probes.delete(this);
      resolve({ code, signal });
    }));
    this.closed = this.exited;
    probes.add(this);
    this.proc.stderr.on('data', (c) => {
      this.stderr += c.toString();
    });
    this.proc.stdout.on('data', (c) => {
      this.buf += c.toString();
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const msg = JSON.parse(line);
        if (msg.id !== undefined) this.answers.get(msg.id)?.(msg);
        else this.events.push(msg);
      }
    });
    this.proc.stdin.on('error', () => {});
  }

  get running() {
    return this.exitCode === undefined;
  }

  describe() {
    return `--- redis_probe (pid ${this.pid}) stderr ---\n${this.stderr.slice(-8000)}\n--- end ---\n`;
  }

  send(verb, ...args) {
    const id = this.nextId++;
    const p = new Promise((resolve) => this.answers.set(id, resolve));
    this.proc.stdin.write(`${verb} ${id} ${args.map((a) => String(a).replace(/ /g, '%20')).join(' ')}\n`);
    return withDeadline(p, 20000, `probe ${verb} ${args.join(' ')}`).finally(() => this.answers.delete(id));
  }

  // A command routed by key (null: any primary); resolves with the answer {reply} or {error}.
  cmd(key, ...args) {
    return this.send('cmd', key === null ? '-' : key, ...args);
  }

  // Retries a command until its reply satisfies ok(reply) (a failover in progress).
  async cmdUntil(key, args, ok, { timeout = 20000, message } = {}) {
    return waitUntil(async () => {
      const a = await this.cmd(key, ...args);
      return a.reply !== undefined && ok(a.reply) ? a : null;
    }, { timeout, interval: 100, message: message || `${args.join(' ')} to succeed` });
  }

  stats() {
    return this.send('stats');
  }

  async waitEvent(pred, { timeout = 15000, message = 'probe event' } = {}) {
    return waitUntil(() => this.events.find(pred), { timeout, message });
  }

  async waitUp(timeout = 20000) {
    await this.waitEvent((e) => e.event === 'state' && e.client === 'probe' && e.up, {
      timeout, message: 'the probe to be up',
    });
  }

  async stop() {
    if (this.running) {
      this.proc.stdin.write('quit\n');
      const r = await Promise.race([this.exited, new Promise((res) => setTimeout(res, 5000))]);
      if (!r) this.proc.kill('SIGKILL');
    }
    await this.exited;
    return this.exitCode;
  }
}

const isOk = (r) => r === 'OK';

// Wraps a test body: on failure, prints the probe's stderr and the servers' output.
function logs(get, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      for (const h of [].concat(get()).filter(Boolean)) if (h.describe) process.stderr.write(h.describe());
      throw err;
    }
  };
}

describe('redis layer: configuration', { skip: ANCHOR_SKIP }, () => {
  before(buildProbe);

  const refused = async (env, variable) => {
    const p = new Probe(env);
    const { code } = await withDeadline(p.exited, 10000, 'probe exit');
    assert.equal(code, 2, p.stderr);
    const lines = p.stderr.trim().split('\n');
    assert.equal(lines.length, 1, p.stderr);
    assert.match(lines[0], new RegExp(`^streamio: invalid ${variable}=`));
    return lines[0];
  };

  test('a bad REDIS_URL stops startup naming it, without its password', async () => {
    const line = await refused({ REDIS_URL: 'redis://app:s3cret@host:99999/0' }, 'REDIS_URL');
    assert.doesNotMatch(line, /s3cret/);
    assert.match(line, /app:\*\*\*@host/);
  });

  test('REDIS_CLUSTER_NODES with REDIS_SENTINELS is a conflict', async () => {
    await refused({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINELS: '127.0.0.1:26379',
      REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS');
  });

  test('a TLS CA file that cannot be read stops startup naming REDIS_TLS_CA_FILE', async () => {
    await refused({ REDIS_TLS: 'true', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'REDIS_TLS_CA_FILE');
  });
});

describe('redis layer: one server through REDIS_URL', { skip: ANCHOR_SKIP }, () => {
  let redis;
  let probe;
  before(async () => {
    buildProbe();
    redis = await startNode({ name: 'redis-acl', args: ['--user', 'app', 'on', '>s3cr3t', '~*', '&*', '+@all'] });
  });
  after(async () => {
    if (probe) assert.equal(await probe.stop(), 0, probe.stderr);
    if (redis) await redis.stop();
  });

  test('AUTH with user and password and SELECT come from the URL', logs(() => probe, async () => {
    probe = new Probe({ REDIS_URL: `redis://app:s3cr3t@${HOST}:${redis.port}/3` });
    await probe.waitUp();
    assert.equal((await probe.cmd('k', 'SET', 'k', 'in-db-3')).reply, 'OK');
    const c = await RedisClient.connect(redis.port);
    try {
      await c.call('AUTH', 'app', 's3cr3t');
      await c.call('SELECT', '3');
      assert.equal(await c.call('GET', 'k'), 'in-db-3');
      const list = await c.call('CLIENT', 'LIST');
      assert.match(list, /name=probe /);
    } finally {
      c.close();
    }
    assert.equal(await probe.stop(), 0, probe.stderr);
    probe = null;
  }));

  test('a wrong password is refused, said once, never printed', logs(() => probe, async () => {
    probe = new Probe({ REDIS_URL: `redis://app:wrong-pw@${HOST}:${redis.port}` });
    await waitUntil(() => /AUTH refused/.test(probe.stderr), { timeout: 10000, message: 'AUTH refused' });
    const s = await probe.stats();
    assert.equal(s.up, false);
    assert.doesNotMatch(probe.stderr, /wrong-pw/);
    assert.equal(await probe.stop(), 0, probe.stderr);
    probe = null;
  }));
});

describe('redis layer on a 6-node Redis Cluster', { skip: ANCHOR_SKIP }, () => {
  let cluster;
  let probe;
  before(async () => {
    buildProbe();
    cluster = await startCluster();
    probe = new Probe({ REDIS_CLUSTER_NODES: cluster.seeds });
    await probe.waitUp();
  });
  after(async () => {
    if (probe) assert.equal(await probe.stop(), 0, probe.stderr);
    if (cluster) await cluster.stop();
  });
  const all = () => [probe, ...(cluster ? cluster.nodes.map((n) => n.handle) : [])];

  test('discovers the 3 masters from one seed and routes keys to each', logs(all, async () => {
    const masters = await cluster.masterPorts();
    await waitUntil(async () => (await probe.stats()).masters.length === 3, { message: '3 masters' });
    const s = await probe.stats();
    assert.deepEqual(s.masters.map((a) => Number(a.split(':')[1])).sort(), masters);
    for (let i = 0; i < 200; i++) assert.equal((await probe.cmd(`k${i}`, 'SET', `k${i}`, `v${i}`)).reply, 'OK');
    for (let i = 0; i < 200; i += 7) assert.equal((await probe.cmd(`k${i}`, 'GET', `k${i}`)).reply, `v${i}`);
    // hash tags keep keys together: a multi-key command on one slot works
    assert.equal((await probe.cmd('{user1}', 'MSET', '{user1}.a', '1', '{user1}.b', '2')).reply, 'OK');
    let total = 0;
    for (const port of masters) {
      const n = (await probe.send('node', `${HOST}:${port}`, 'DBSIZE')).reply;
      assert.ok(n > 0, `master ${port} holds keys`);
      total += n;
    }
    assert.equal(total, 202);
  }));

  test('follows ASK while a slot is half-moved and MOVED after the move', logs(all, async () => {
    const key = 'probe:resharded';
    assert.equal((await probe.cmd(key, 'SET', key, 'before')).reply, 'OK');
    const slot = await cluster.nodes[0].call('CLUSTER', 'KEYSLOT', key);
    const from = await cluster.slotOwner(slot);
    const masters = await cluster.masterPorts();
    const to = cluster.byPort(masters.find((p) => p !== from.port));
    const before = await probe.stats();
    await cluster.moveSlot(slot, to, {
      between: async () => {
        assert.equal((await probe.cmd(key, 'GET', key)).reply, 'before');
      },
    });
    const mid = await probe.stats();
    assert.ok(mid.asked > before.asked, `an ASK was followed (${JSON.stringify(mid)})`);
    assert.equal((await probe.cmd(key, 'SET', key, 'after')).reply, 'OK');
    assert.equal(await to.call('GET', key), 'after');
    const end = await probe.stats();
    assert.ok(end.moved > mid.moved || end.changes > mid.changes, 'the move was learnt');
  }));

  test('a shard subscription follows its slot to the new owner', logs(all, async () => {
    const ch = 'probe:room:7';
    await probe.send('sub', 'shard', ch);
    const slot = await cluster.nodes[0].call('CLUSTER', 'KEYSLOT', ch);
    const owner = await cluster.slotOwner(slot);
    await waitUntil(async () => (await owner.call('PUBSUB', 'SHARDNUMSUB', ch))[1] === 1, {
      message: 'the SSUBSCRIBE on the owner',
    });
    await owner.call('SPUBLISH', ch, 'one');
    await probe.waitEvent((e) => e.event === 'message' && e.data === 'one');
    const masters = await cluster.masterPorts();
    const to = cluster.byPort(masters.find((p) => p !== owner.port));
    await cluster.moveSlot(slot, to);
    await waitUntil(async () => (await to.call('PUBSUB', 'SHARDNUMSUB', ch))[1] === 1, {
      timeout: 15000, message: 'the subscription on the new owner',
    });
    await to.call('SPUBLISH', ch, 'two');
    await probe.waitEvent((e) => e.event === 'message' && e.data === 'two');
    assert.ok((await probe.stats()).sub_moves >= 1);
  }));

  test('a subscription on every master hears each master\'s key events', logs(all, async () => {
    for (const n of cluster.nodes) await n.call('CONFIG', 'SET', 'notify-keyspace-events', 'E$');
    await probe.send('subm', 'channel', '__keyevent@0__:set');
    const masters = await cluster.masterPorts();
    await waitUntil(async () => {
      for (const p of masters) {
        const r = await cluster.byPort(p).call('PUBSUB', 'NUMSUB', '__keyevent@0__:set');
        if (r[1] !== 1) return false;
      }
      return true;
    }, { message: 'the key-event subscription on every master' });
    const keys = ['ev:a', 'ev:b', 'ev:c', 'ev:d', 'ev:e', 'ev:f', 'ev:g', 'ev:h'];
    for (const k of keys) assert.equal((await probe.cmd(k, 'SET', k, '1')).reply, 'OK');
    for (const k of keys) {
      await probe.waitEvent((e) => e.event === 'message' && e.channel === '__keyevent@0__:set' && e.data === k);
    }
  }));

  test('a graceful CLUSTER FAILOVER moves writes to the promoted replica', logs(all, async () => {
    const key = 'probe:failover:graceful';
    assert.equal((await probe.cmd(key, 'SET', key, 'v1')).reply, 'OK');
    const slot = await cluster.nodes[0].call('CLUSTER', 'KEYSLOT', key);
    const master = await cluster.slotOwner(slot);
    const myId = await cluster.nodeId(master);
    let replica = null;
    for (const n of cluster.nodes) {
      const role = await n.call('ROLE');
      if (role[0] === 'slave' && Number(role[2]) === master.port) replica = n;
    }
    assert.ok(replica, `a replica of ${master.port}`);
    assert.ok(myId);
    await cluster.failover(replica);
    await probe.cmdUntil(key, ['SET', key, 'v2'], isOk);
    assert.equal(await replica.call('GET', key), 'v2');
    await probe.waitEvent((e) => e.event === 'master' && e.up && e.addr === `${HOST}:${replica.port}`);
  }));

  test('kill -9 of a master: its replica takes over and commands succeed again', logs(all, async () => {
    const key = 'probe:failover:kill';
    assert.equal((await probe.cmd(key, 'SET', key, 'v1')).reply, 'OK');
    const slot = await cluster.nodes[0].call('CLUSTER', 'KEYSLOT', key);
    const master = await cluster.slotOwner(slot);
    let replica = null;
    for (const n of cluster.nodes) {
      const role = await n.call('ROLE');
      if (role[0] === 'slave' && Number(role[2]) === master.port) replica = n;
    }
    assert.ok(replica);
    await replica.call('READONLY'); /* a replica answers reads of its master's slots */
    await waitUntil(async () => (await replica.call('GET', key)) === 'v1', {
      message: 'the replica to have the key',
    });
    master.client.close();
    process.kill(master.handle.pid, 'SIGKILL');
    await master.handle.exited;
    await probe.cmdUntil(key, ['SET', key, 'v2'], isOk, { timeout: 30000 });
    assert.equal(await cluster.role(replica), 'master');
    assert.equal(await replica.call('GET', key), 'v2');
    await waitUntil(async () => (await probe.stats()).masters.length === 3, { message: '3 masters again' });
    await probe.waitEvent((e) => e.event === 'master' && !e.up && e.addr === `${HOST}:${master.port}`);
  }));
});

describe('redis layer with Sentinel', { skip: ANCHOR_SKIP }, () => {
  let set;
  let probe;
  before(async () => {
    buildProbe();
    set = await startSentinels();
    probe = new Probe({ REDIS_SENTINELS: set.sentinelAddrs, REDIS_SENTINEL_NAME: set.name });
    await probe.waitUp();
  });
  after(async () => {
    if (probe) assert.equal(await probe.stop(), 0, probe.stderr);
    if (set) await set.stop();
  });
  const all = () => [probe, set && set.primary.handle, set && set.replica.handle,
    ...(set ? set.sentinels.map((s) => s.handle) : [])];

  test('asks the sentinels for the primary and writes there', logs(all, async () => {
    assert.equal((await probe.cmd('k', 'SET', 'k', 'v')).reply, 'OK');
    assert.equal(await set.primary.call('GET', 'k'), 'v');
    const s = await probe.stats();
    assert.deepEqual(s.masters, [`${HOST}:${set.primary.port}`]);
  }));

  test('SENTINEL FAILOVER moves every connection to the new primary', logs(all, async () => {
    await probe.send('sub', 'channel', 'probe:news');
    await waitUntil(async () => (await set.primary.call('PUBSUB', 'NUMSUB', 'probe:news'))[1] === 1,
      { message: 'the subscription' });
    assert.equal(await set.sentinels[0].call('SENTINEL', 'FAILOVER', set.name), 'OK');
    await waitUntil(async () => (await set.currentPrimaryPort()) === set.replica.port,
      { timeout: 30000, message: 'the sentinels to name the replica' });
    // +switch-master reaches the probe on its own connection: wait for it to have moved (a write
    // sent before that went to the old primary, which Sentinel demotes: Redis' own window)
    await waitUntil(async () => (await probe.stats()).masters[0] === `${HOST}:${set.replica.port}`,
      { timeout: 15000, message: 'the probe to follow the switch' });
    await probe.cmdUntil('k2', ['SET', 'k2', 'after-failover'], isOk, { timeout: 30000 });
    assert.equal(await set.replica.call('GET', 'k2'), 'after-failover');
    assert.equal((await set.replica.call('ROLE'))[0], 'master');
    await waitUntil(async () => (await set.replica.call('PUBSUB', 'NUMSUB', 'probe:news'))[1] === 1,
      { timeout: 15000, message: 'the subscription on the new primary' });
    await set.replica.call('PUBLISH', 'probe:news', 'hello');
    await probe.waitEvent((e) => e.event === 'message' && e.data === 'hello');
    const s = await probe.stats();
    assert.deepEqual(s.masters, [`${HOST}:${set.replica.port}`]);
    assert.ok(s.changes >= 1);
  }));
});

describe('redis layer over TLS', { skip: ANCHOR_SKIP }, () => {
  let tls;
  let probe;
  before(async () => {
    buildProbe();
    tls = await startTlsRedis({ clientCerts: true });
  });
  after(async () => {
    if (probe) assert.equal(await probe.stop(), 0, probe.stderr);
    if (tls) await tls.stop();
  });
  const all = () => [probe, tls && tls.handle];
  const env = (extra) => ({
    REDIS_URL: `rediss://${HOST}:${tls.port}`,
    REDIS_TLS_CA_FILE: tls.certs.ca,
    REDIS_TLS_CERT_FILE: tls.certs.clientCert,
    REDIS_TLS_KEY_FILE: tls.certs.clientKey,
    ...extra,
  });

  test('mutual TLS with verification on: commands and pub/sub work', logs(all, async () => {
    probe = new Probe(env({}));
    await probe.waitUp();
    assert.equal((await probe.cmd('k', 'SET', 'k', 'over-tls')).reply, 'OK');
    assert.equal(await tls.cli('GET', 'k'), 'over-tls');
    await probe.send('sub', 'channel', 'tls:news');
    await waitUntil(async () => /tls:news\n1/.test(await tls.cli('PUBSUB', 'NUMSUB', 'tls:news')),
      { message: 'the subscription' });
    await tls.cli('PUBLISH', 'tls:news', 'hi');
    await probe.waitEvent((e) => e.event === 'message' && e.data === 'hi');
  }));

  test('reconnects after the TLS server restarts', logs(all, async () => {
    await tls.restart();
    await probe.cmdUntil('k', ['SET', 'k', 'again'], isOk, { timeout: 20000 });
    assert.equal(await tls.cli('GET', 'k'), 'again');
    assert.equal(await probe.stop(), 0, probe.stderr);
    probe = null;
  }));

  const refusedWith = async (extra, pattern) => {
    probe = new Probe(env(extra));
    await waitUntil(() => pattern.test(probe.stderr), { timeout: 10000, message: `${pattern} in the log` });
    assert.equal((await probe.stats()).up, false);
    assert.equal(await probe.stop(), 0, probe.stderr);
    probe = null;
  };

  test('a server certificate from another CA is refused', logs(all, async () => {
    await refusedWith({ REDIS_TLS_CA_FILE: tls.certs['other-ca'] }, /certificate verify failed/);
  }));

  test('a server name the certificate does not carry is refused', logs(all, async () => {
    await refusedWith({ REDIS_TLS_SERVER_NAME: 'redis.example.net' }, /certificate verify failed/);
  }));

  test('REDIS_TLS_INSECURE=true connects to a server it cannot verify', logs(all, async () => {
    probe = new Probe(env({ REDIS_TLS_CA_FILE: tls.certs['other-ca'], REDIS_TLS_INSECURE: 'true' }));
    await probe.waitUp();
    assert.equal((await probe.cmd('k', 'GET', 'k')).reply, 'again');
    assert.equal(await probe.stop(), 0, probe.stderr);
    probe = null;
  }));

  test('without a client certificate the server refuses the handshake', logs(all, async () => {
    await refusedWith({ REDIS_TLS_CERT_FILE: '', REDIS_TLS_KEY_FILE: '' }, /alert|certificate required/);
  }));
});

