'use strict';
/*
 * Redis topologies for the integration tests, started from Debian's packages on free loopback
 * ports, each in its own temp dir, every process tracked by PID through the harness:
 *
 *   startCluster()    6-node Redis Cluster: 3 masters + 3 replicas (`redis-cli --cluster create`)
 *   startSentinels()  a primary, a replica and 3 sentinels (`redis-sentinel`) watching it
 *   startTlsRedis()   a TLS-only redis-server, with a CA, a server certificate (127.0.0.1 and
 *                     localhost) and a client certificate made by `openssl` at test time, plus
 *                     a second, unrelated CA for the tests that must be refused
 *
 * Each returns handles and a stop() that stops what it started and removes its files. Helpers
 * wait for observable state (cluster_state:ok, sentinels that know each other), never a fixed
 * sleep. Nothing here listens anywhere but 127.0.0.1.
 */
const { execFileSync, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { HOST, RedisClient, freePort, spawnTracked, stop, waitUntil } = require('./harness');

// An error that ends a waitUntil at once (a process that died will not come back).
function fatal(message) {
  const err = new Error(message);
  err.fatal = true;
  return err;
}

function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `streamio-it-${tag}-`));
}

// Runs a command to completion (bounded); resolves with stdout, rejects with stderr in the message.
function run(cmd, args, { timeout = 30000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n${stdout}\n${stderr}`;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

/*
 * One redis-server on a free port with its own dir. `args` are extra options. Resolves once it
 * answers PING (a plain-TCP server) or once its process is up and `ready()` says so.
 */
async function startNode({ args = [], name = 'redis', dir, ready } = {}) {
  const port = await freePort();
  const d = dir || tmpdir(name);
  const handle = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', d,
      '--daemonize', 'no', ...args],
    { name: `${name}:${port}` },
  );
  const node = { port, dir: d, handle, client: null };
  await waitUntil(async () => {
    if (!handle.running) throw fatal(`${name} exited:\n${handle.output()}`);
    if (ready) return ready(node);
    const c = await RedisClient.connect(port, { timeout: 1000 });
    try {
      if ((await c.callTimeout(2000, 'PING')) !== 'PONG') throw new Error('no PONG');
    } catch (err) {
      c.close();
      throw err;
    }
    node.client = c;
    return true;
  }, { timeout: 15000, message: `${name} on ${port} to start` });
  // Reconnects when Redis closed the connection (Sentinel kills clients during a failover).
  node.call = async (...a) => {
    if (!node.client || node.client.dead) node.client = await RedisClient.connect(port);
    return node.client.call(...a);
  };
  node.stop = async () => {
    if (node.client) node.client.close();
    await stop(handle, 5000);
  };
  return node;
}

// Parses CLUSTER INFO / INFO text into an object.
function infoFields(text) {
  const o = {};
  for (const line of String(text).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) o[line.slice(0, i)] = line.slice(i + 1);
  }
  return o;
}

/*
 * A Redis Cluster of `masters` masters with `replicas` replicas each. nodeTimeout is
 * cluster-node-timeout (short, so a killed master is replaced in seconds). Returns
 * {nodes, seeds, role(node), masterPorts(), replicaOf(port), slotOwner(slot), stop()}.
 */
async function startCluster({ masters = 3, replicas = 1, nodeTimeout = 1000 } = {}) {
  const dir = tmpdir('cluster');
  const nodes = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const d = path.join(dir, String(i));
      fs.mkdirSync(d);
      nodes.push(await startNode({
        name: 'cluster-node',
        dir: d,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(nodeTimeout), '--cluster-replica-validity-factor', '0',
          '--cluster-allow-replica-migration', 'no'],
      }));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60000 });
    await waitUntil(async () => {
      for (const n of nodes) {
        const info = infoFields(await n.call('CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok' || info.cluster_slots_ok !== '16384') return false;
        if (Number(info.cluster_known_nodes) !== nodes.length) return false;
      }
      return true;
    }, { timeout: 30000, interval: 100, message: 'cluster_state:ok on every node' });
  } catch (err) {
    for (const n of nodes) await n.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const byPort = (port) => nodes.find((n) => n.port === port);
  const cluster = {
    nodes,
    seeds: `${HOST}:${nodes[0].port}`,
    byPort,
    // The master serving `slot`, from a live node's CLUSTER SLOTS.
    async slotOwner(slot) {
      for (const n of nodes) {
        if (!n.handle.running) continue;
        try {
          const ranges = await n.call('CLUSTER', 'SLOTS');
          for (const r of ranges) if (slot >= r[0] && slot <= r[1]) return byPort(Number(r[2][1]));
        } catch {
          /* try the next node */
        }
      }
      return null;
    },
    async role(n) {
      return (await n.call('ROLE'))[0];
    },
    async masterPorts() {
      const out = [];
      for (const n of nodes) {
        if (n.handle.running && (await cluster.role(n)) === 'master') out.push(n.port);
      }
      return out.sort();
    },
    async nodeId(n) {
      return n.call('CLUSTER', 'MYID');
    },
    /*
     * A graceful CLUSTER FAILOVER by `replica`, waited for until it is master. Redis aborts a
     * manual failover that does not complete within its own 5 s window (a replica still in
     * its first full sync on a loaded box) and does not retry it: wait for the replication
     * link first, then ask again until the promotion takes.
     */
    async failover(replica, timeout = 60000) {
      await waitUntil(async () => {
        const role = await replica.call('ROLE');
        return role[0] === 'master' || role[3] === 'connected';
      }, { timeout, interval: 100, message: 'the replica linked to its master' });
      await waitUntil(async () => {
        if ((await cluster.role(replica)) === 'master') return true;
        await replica.call('CLUSTER', 'FAILOVER');
        return waitUntil(async () => (await cluster.role(replica)) === 'master',
          { timeout: 8000, interval: 100, message: 'promotion' }).then(() => true, () => false);
      }, { timeout, interval: 100, message: 'the replica promoted' });
    },
    // Waits until every live node agrees the cluster is ok and serves every slot.
    async waitOk(timeout = 30000) {
      await waitUntil(async () => {
        for (const n of nodes) {
          if (!n.handle.running) continue;
          const info = infoFields(await n.call('CLUSTER', 'INFO'));
          if (info.cluster_state !== 'ok' || info.cluster_slots_ok !== '16384') return false;
        }
        return true;
      }, { timeout, interval: 100, message: 'cluster_state:ok' });
    },
    /*
     * Moves `slot` (and its keys) from its owner to `to`, the way redis-cli --cluster reshard
     * does: IMPORTING/MIGRATING, MIGRATE of every key, then SETSLOT NODE on every master.
     * `between` (optional) runs while the slot is half-moved (keys moved, ownership not yet):
     * the window where clients get ASK.
     */
    async moveSlot(slot, to, { between } = {}) {
      const from = await cluster.slotOwner(slot);
      if (from === to) return;
      const toId = await cluster.nodeId(to);
      const fromId = await cluster.nodeId(from);
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      for (;;) {
        const keys = await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 100);
        if (!keys.length) break;
        await from.call('MIGRATE', HOST, to.port, '', 0, 5000, 'KEYS', ...keys);
      }
      if (between) await between();
      for (const n of nodes) {
        if (n.handle.running && (await cluster.role(n)) === 'master') {
          await n.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
        }
      }
    },
    async stop() {
      for (const n of nodes) await n.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

function sentinelCommand() {
  try {
    execFileSync('sh', ['-c', 'command -v redis-sentinel'], { stdio: 'ignore' });
    return { cmd: 'redis-sentinel', pre: [] };
  } catch {
    return { cmd: 'redis-server', pre: ['--sentinel'] }; // the same binary, in sentinel mode
  }
}

/*
 * A primary, one replica and `count` sentinels monitoring it as `name` (quorum 2, a primary is
 * down after downAfter ms). Returns {name, primary, replica, sentinels, sentinelAddrs,
 * currentPrimaryPort(), stop()}. Resolves once every sentinel knows the replica and the other
 * sentinels, the state SENTINEL FAILOVER needs.
 */
async function startSentinels({ name = 'mymaster', count = 3, downAfter = 1000 } = {}) {
  const dir = tmpdir('sentinel');
  const started = [];
  try {
    const primary = await startNode({ name: 'sentinel-primary' });
    started.push(primary);
    const replica = await startNode({
      name: 'sentinel-replica', args: ['--replicaof', HOST, String(primary.port)],
    });
    started.push(replica);
    await waitUntil(async () => infoFields(await replica.call('INFO', 'replication'))
      .master_link_status === 'up', { timeout: 15000, message: 'the replica to sync' });
    const { cmd, pre } = sentinelCommand();
    const sentinels = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const d = path.join(dir, `s${i}`);
      fs.mkdirSync(d);
      const conf = path.join(d, 'sentinel.conf');
      fs.writeFileSync(conf, [
        `port ${port}`, `bind ${HOST}`, `dir ${d}`, 'protected-mode no',
        `sentinel monitor ${name} ${HOST} ${primary.port} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfter}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`, ''].join('\n'));
      const handle = spawnTracked(cmd, [conf, ...pre], { name: `sentinel:${port}` });
      const s = { port, handle, client: null };
      started.push({ stop: () => (s.client && s.client.close(), stop(handle, 5000)) });
      s.client = await waitUntil(async () => {
        if (!handle.running) throw fatal(`sentinel exited:\n${handle.output()}`);
        return RedisClient.connect(port, { timeout: 1000 });
      }, { timeout: 15000, message: `sentinel on ${port}` });
      s.call = (...a) => s.client.call(...a);
      sentinels.push(s);
    }
    await waitUntil(async () => {
      for (const s of sentinels) {
        if ((await s.call('SENTINEL', 'REPLICAS', name)).length < 1) return false;
        if ((await s.call('SENTINEL', 'SENTINELS', name)).length < count - 1) return false;
      }
      return true;
    }, { timeout: 30000, interval: 200, message: 'sentinels that know the replica and each other' });
    return {
      name,
      primary,
      replica,
      sentinels,
      sentinelAddrs: sentinels.map((s) => `${HOST}:${s.port}`).join(','),
      async currentPrimaryPort() {
        const r = await sentinels[0].call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name);
        return Number(r[1]);
      },
      async stop() {
        for (const x of started.reverse()) await x.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const x of started.reverse()) await x.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// A CA and certificates signed by it, made with the openssl CLI in `dir`.
async function makeCerts(dir) {
  const o = (...args) => run('openssl', args, { cwd: dir });
  const ext = path.join(dir, 'san.ext');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const files = {};
  for (const ca of ['ca', 'other-ca']) {
    await o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=streamio test ${ca}`);
    files[ca] = path.join(dir, `${ca}.crt`);
  }
  for (const who of ['server', 'client']) {
    await o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    await o('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
      '-CAcreateserial', '-out', `${who}.crt`, '-days', '2',
      ...(who === 'server' ? ['-extfile', ext] : []));
    files[`${who}Cert`] = path.join(dir, `${who}.crt`);
    files[`${who}Key`] = path.join(dir, `${who}.key`);
  }
  return files;
}

/*
 * A redis-server that only speaks TLS (port 0, tls-port P). clientCerts: the server requires a
 * client certificate signed by the CA (mutual TLS). Returns {port, certs, restart(), stop()}.
 */
async function startTlsRedis({ clientCerts = true } = {}) {
  const dir = tmpdir('tls');
  const certs = await makeCerts(dir);
  const port = await freePort();
  const args = ['--port', '0', '--tls-port', String(port), '--bind', HOST, '--save', '',
    '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--tls-cert-file', certs.serverCert,
    '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca,
    '--tls-auth-clients', clientCerts ? 'yes' : 'no'];
  const cli = ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey,
    '-h', HOST, '-p', String(port)];
  const t = { port, certs, dir, handle: null };
  const start = async () => {
    t.handle = spawnTracked('redis-server', args, { name: `redis-tls:${port}` });
    await waitUntil(async () => {
      if (!t.handle.running) throw fatal(`redis-server (TLS) exited:\n${t.handle.output()}`);
      return (await run('redis-cli', [...cli, 'PING'], { timeout: 2000 })).trim() === 'PONG';
    }, { timeout: 15000, message: `TLS redis on ${port} to answer` });
  };
  await start();
  t.cli = (...a) => run('redis-cli', [...cli, ...a.map(String)]).then((s) => s.trim());
  t.restart = async () => {
    await stop(t.handle, 5000);
    await start();
  };
  t.stop = async () => {
    await stop(t.handle, 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return t;
}

module.exports = { startNode, startCluster, startSentinels, startTlsRedis, makeCerts, infoFields };
