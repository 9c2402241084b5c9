'use strict';
// GET /metrics: Prometheus text format (checked by a strict parser), server totals equal to the
// sum of the per-worker series, values that follow real traffic. streamio only.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const prom = require('./lib/promtext');

async function getMetrics(url) {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return prom.parse(await r.text());
}

describe('GET /metrics', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2' }, { redis });
  });

  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  const logs = (fn) => h.withLogs(() => srv, fn);

  it('the strict parser rejects malformed expositions', () => {
    const bad = [
      'x 1', // no final newline
      'x{a="1} 1\n',
      'x{a="\\q"} 1\n',
      '# TYPE x gauge\n# TYPE x gauge\nx 1\n',
      '# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n',
      'x 1\nx 2\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
      'x one\n',
    ];
    for (const t of bad) assert.throws(() => prom.parse(t), undefined, JSON.stringify(t));
    const ok = prom.parse('# HELP x X.\n# TYPE x gauge\nx 1\nx{a="q\\"\\\\\\n"} +Inf\n');
    assert.equal(prom.value(ok, 'x'), 1);
  });

  it('is valid and lists every family with server totals and per-worker series', logs(async () => {
    const m = await getMetrics(srv.url);
    for (const f of ['streamio_connections', 'streamio_rooms', 'streamio_streams', 'streamio_pools',
      'streamio_deliveries_total', 'streamio_sent_bytes_total', 'streamio_slow_clients_total',
      'streamio_xread_duration_seconds', 'streamio_xread_batch_entries', 'streamio_ring_depth',
      'streamio_adapter_received_total', 'streamio_adapter_published_total',
      'streamio_redis_reconnects_total', 'streamio_handshakes_total', 'streamio_workers']) {
      assert.ok(m.has(f), `family ${f}`);
      assert.ok(m.get(f).help, `HELP for ${f}`);
    }
    assert.equal(m.get('streamio_xread_duration_seconds').type, 'histogram');
    assert.equal(m.get('streamio_deliveries_total').type, 'counter');
    for (const [name, f] of m) {
      if (f.type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
    }
    const body = (await h.healthRetry(srv)).body;
    assert.equal(prom.value(m, 'streamio_workers'), 2);
    assert.equal(prom.value(m, 'streamio_workers_alive'), 2);
    for (const w of body.workers) {
      const labels = { worker: String(w.slot), pid: String(w.pid) };
      assert.notEqual(prom.value(m, 'streamio_connections', labels), undefined, JSON.stringify(labels));
    }
  }));

  it('follows traffic: clients, entries, deliveries, adapter', logs(async () => {
    const room = h.uniq('metrics.room');
    const clients = await h.connectClients(srv.url, 3);
    const boxes = clients.map((s) => h.collect(s));
    await Promise.all(clients.map((s) => h.joinRoom(s, room)));
    for (let i = 0; i < 5; i++) await redis.call('XADD', room, '*', 'event', 'm', 'data', String(i));
    await Promise.all(boxes.map((b) => b.waitCount(5)));
    const m = await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      // connection states are refreshed by each worker's 250 ms tick
      return prom.value(x, 'streamio_connections') === 3 && prom.value(x, 'streamio_redis_connected') === 1
        && x.get('streamio_ring_depth').samples.every((s) => s.value === 0) ? x : null;
    }, { timeout: 10000, message: 'streamio_connections 3, redis connected, rings empty' });
    const sumOf = (name) => m.get(name).samples.filter((s) => s.labels.worker !== undefined)
      .reduce((a, s) => a + s.value, 0);
    for (const f of ['streamio_connections', 'streamio_messages_processed_total',
      'streamio_deliveries_total', 'streamio_adapter_published_total', 'streamio_adapter_received_total']) {
      assert.equal(sumOf(f), prom.value(m, f), `${f}: total is the sum over workers`);
    }
    assert.ok(prom.value(m, 'streamio_messages_processed_total') >= 5);
    assert.ok(prom.value(m, 'streamio_deliveries_total') >= 15);
    assert.ok(prom.value(m, 'streamio_adapter_published_total') >= 5);
    assert.ok(prom.value(m, 'streamio_streams') >= 1);
    assert.ok(prom.value(m, 'streamio_rooms') >= 1);
    h.closeAllClients();
  }));
});
