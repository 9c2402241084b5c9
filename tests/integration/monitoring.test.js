'use strict';
// Monitoring: /metrics (promtool's lint, build info, the delivery latency histogram counted once
// per entry), seed 004's /socket-health and /socket-metrics (JSON and ?format=prometheus) from
// the same counters, whichever worker answers, and the shipped Prometheus rules and Grafana
// dashboard checked with Debian's promtool against what a live server exports.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { parse } = require('./lib/promtext');

const root = path.resolve(__dirname, '../..');
const PROMTOOL = ['/usr/bin/promtool'].find((p) => fs.existsSync(p));
const noPromtool = !PROMTOOL && 'promtool not installed (Debian package prometheus)';

function promtool(args, input) {
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const text = async (url) => {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
};

describe('monitoring endpoints (CLUSTER_WORKERS=2)', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const clients = [];
  const ENTRIES = 12;
  let version;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', DISCOVERY_INTERVAL: '200', MEMORY_HIGH_WATER_MB: '512' },
      { redis });
    await h.spreadClients(srv, clients, { workers: 2, step: 4, min: 6 });
    const room = h.uniq('mon.room');
    const inboxes = clients.map((s) => h.collect(s));
    await Promise.all(clients.map((s) => h.joinRoom(s, room)));
    // the stream is discovered from its first entry; every entry is delivered once to each client
    for (let i = 0; i < ENTRIES; i++) await redis.call('XADD', room, '*', 'event', 'm', 'data', String(i));
    await h.waitUntil(() => inboxes.every((b) => b.items.length === ENTRIES),
      { timeout: 15000, message: 'every entry delivered' });
    version = (await srv.health()).body.version;
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('streamio --version prints the version /health and /metrics report, and exits 0', logs(async () => {
    const r = spawnSync(process.env.STREAMIO_BIN, ['--version'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0);
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.equal(r.stdout, `streamio ${version}\n`);
    const bad = spawnSync(process.env.STREAMIO_BIN, ['--bogus'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^usage: streamio \[--version\]/);
    const fam = parse((await text(`${srv.url}/metrics`)).body).get('streamio_build_info');
    assert.deepEqual(fam.samples.map((s) => [s.labels, s.value]), [[{ version }, 1]]);
  }));

  it('counts each entry once in the delivery latency histogram, however many recipients', logs(async () => {
    const fam = parse((await text(`${srv.url}/metrics`)).body).get('streamio_delivery_latency_seconds');
    assert.equal(fam.type, 'histogram');
    const server = fam.samples.filter((s) => !('worker' in s.labels));
    const count = server.find((s) => s.name.endsWith('_count')).value;
    assert.equal(count, ENTRIES, `${ENTRIES} entries to ${clients.length} clients`);
    const perWorker = fam.samples.filter((s) => s.name.endsWith('_count') && 'worker' in s.labels);
    assert.equal(perWorker.reduce((a, s) => a + s.value, 0), ENTRIES);
    const sum = server.find((s) => s.name.endsWith('_sum')).value;
    assert.ok(sum > 0 && sum < ENTRIES * 15, `sum ${sum}`);
  }));

  it('/metrics passes promtool check metrics (lint included)', { skip: noPromtool }, logs(async () => {
    const m = await text(`${srv.url}/metrics`);
    const r = promtool(['check', 'metrics'], m.body);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), '');
  }));

  it('/socket-health answers like the seed guide, whichever worker takes it', logs(async () => {
    const seen = new Set();
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`${srv.url}/socket-health`, { headers: { Connection: 'close' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      const b = await r.json();
      assert.deepEqual(Object.keys(b).slice(0, 4), ['status', 'connections', 'memory', 'performance']);
      assert.equal(b.status, 'healthy');
      assert.equal(b.connections, clients.length);
      assert.ok(b.memory.used > 1e6, `memory.used ${b.memory.used}`);
      assert.equal(b.memory.threshold, 2 * 512 * 1024 * 1024);
      assert.equal(b.performance.errors, 0);
      assert.equal(b.version, version);
      assert.deepEqual(b.workers, { alive: 2, configured: 2 });
      seen.add(JSON.stringify(b.connections));
    }
    assert.equal(seen.size, 1);
  }));

  it('/socket-metrics gives latency p50/p95/p99, events per second, connections and memory', logs(async () => {
    const room = h.uniq('mon.rate');
    const inbox = h.collect(clients[0]);
    await h.joinRoom(clients[0], room);
    // a steady flow, so the last 5-10 s hold entries whatever the window's phase
    let b;
    await h.waitUntil(async () => {
      await redis.call('XADD', room, '*', 'event', 'r', 'data', '1');
      b = await (await fetch(`${srv.url}/socket-metrics`)).json();
      return inbox.items.length > 3 && b.performance.latency.p50 !== null && b.performance.throughput.eventsPerSecond > 0;
    }, { timeout: 20000, interval: 100, message: 'a window with deliveries' });
    const lat = b.performance.latency;
    assert.ok(lat.p50 > 0 && lat.p50 <= lat.p95 && lat.p95 <= lat.p99, JSON.stringify(lat));
    assert.ok(lat.p99 < 30000, JSON.stringify(lat));
    assert.equal(b.connections.total, clients.length);
    assert.deepEqual(b.connections.byCompany, {});
    const byWorker = b.connections.byWorker;
    assert.deepEqual(Object.keys(byWorker).sort(), ['0', '1']);
    assert.equal(byWorker['0'] + byWorker['1'], clients.length);
    assert.ok(b.memory.usage > 0 && b.memory.usage < 100, `usage ${b.memory.usage}`);
    assert.ok(['stable', 'increasing', 'decreasing'].includes(b.memory.trend));
    assert.ok(b.memory.rooms >= 1);
  }));

  it('/socket-metrics?format=prometheus is valid exposition text with the seed\'s names', logs(async () => {
    const r = await text(`${srv.url}/socket-metrics?format=prometheus`);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const fams = parse(r.body);
    assert.equal(fams.get('socketio_connections_active').samples[0].value, clients.length);
    const q = fams.get('socketio_latency_seconds');
    assert.equal(q.type, 'summary');
    assert.deepEqual(q.samples.filter((s) => s.labels.quantile).map((s) => s.labels.quantile), ['0.5', '0.95', '0.99']);
    assert.ok(q.samples.find((s) => s.name === 'socketio_latency_seconds_count').value >= ENTRIES);
    assert.ok(fams.has('socketio_memory_usage_percent'));
    if (PROMTOOL) {
      const lint = promtool(['check', 'metrics'], r.body);
      assert.equal(lint.code, 0, lint.out);
    }
  }));

  it('/socket-health turns degraded (503) when Redis goes away', logs(async () => {
    await redis.stop();
    const r = await h.waitUntil(async () => {
      const x = await fetch(`${srv.url}/socket-health`);
      return x.status === 503 && x;
    }, { timeout: 15000, message: '503 degraded' });
    const b = await r.json();
    assert.equal(b.status, 'degraded');
    assert.equal(b.redisConnected, false);
    redis = null;
  }));
});

describe('Prometheus rules and Grafana dashboard (contrib/)', { timeout: 60000, skip: h.ANCHOR_SKIP || noPromtool }, () => {
  let redis;
  let srv;
  let exported;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({}, { redis });
    exported = parse(await (await fetch(`${srv.url}/metrics`)).text());
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  // Every streamio_* series a PromQL expression names must be exported by the server.
  const checkNames = (expr, where) => {
    for (const name of expr.match(/\bstreamio_[a-z_]+/g) || []) {
      const fam = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(exported.has(name) || exported.has(fam), `${where}: ${name} is not in /metrics`);
    }
  };

  it('promtool check rules and promtool test rules pass on streamio-rules.yml', logs(async () => {
    const rules = path.join(root, 'contrib/prometheus/streamio-rules.yml');
    let r = promtool(['check', 'rules', rules]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS: 8 rules found/);
    r = promtool(['test', 'rules', path.join(root, 'tests/prometheus/streamio-rules.test.yml')]);
    assert.equal(r.code, 0, r.out);
    const names = [];
    for (const m of fs.readFileSync(rules, 'utf8').matchAll(/^\s+- alert: (\w+)$/gm)) names.push(m[1]);
    assert.deepEqual(names, ['StreamioDown', 'StreamioWorkersDown', 'StreamioRedisDisconnected',
      'StreamioDeliveryLatencyHigh', 'StreamioSlowClients', 'StreamioLimitRejections',
      'StreamioMemoryHighWater', 'StreamioMemoryShedding']);
    checkNames(fs.readFileSync(rules, 'utf8'), 'rules');
  }));

  it('every dashboard query parses (promtool) and names only exported metrics', logs(async () => {
    const dash = JSON.parse(fs.readFileSync(path.join(root, 'contrib/grafana/streamio.json'), 'utf8'));
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr]));
    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    // Grafana's variables, as Grafana substitutes them
    const plain = exprs.map(([t, e]) => [t, e.replace(/\$instance/g, '.*').replace(/\$__rate_interval/g, '1m')]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-dash-'));
    try {
      const file = path.join(dir, 'dashboard-queries.yml');
      fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${plain.map(([, e], i) =>
        `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(e)}\n`).join('')}`);
      const r = promtool(['check', 'rules', file]);
      assert.equal(r.code, 0, r.out);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const [title, e] of exprs) checkNames(e, `panel "${title}"`);
    const uses = (re) => exprs.some(([, e]) => re.test(e));
    assert.ok(uses(/histogram_quantile\(0\.99, .*streamio_delivery_latency_seconds_bucket/));
    assert.ok(uses(/streamio_resident_memory_bytes/) && uses(/streamio_limit_rejections_total/));
  }));
});
