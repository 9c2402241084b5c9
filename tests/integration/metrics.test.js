'use strict';
// GET /metrics: Prometheus text format (checked by a strict parser), server totals equal to the
// sum of the per-worker series, values that follow real traffic. streamio only.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const prom = require('./lib/promtext');

async function getMetrics(url) {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return prom.parse(await r.text());
}

// The value of `name` (server total, or the series with `labels`) in `b` minus its value in `a`.
function delta(a, b, name, labels = {}) {
  return prom.value(b, name, labels) - (prom.value(a, name, labels) || 0);
}

// The {worker, pid} labels of the one worker series of `name` whose value passes `pred`.
function workerWith(m, name, pred) {
  const hits = m.get(name).samples.filter((s) => s.labels.worker !== undefined && pred(s.value, s.labels));
  assert.equal(hits.length, 1, `one worker with the wanted ${name}: ${JSON.stringify(m.get(name).samples)}`);
  return hits[0].labels;
}

// Metrics once `clients` are connected, every Redis link is up and the rings are empty.
function settled(url, clients) {
  return h.waitUntil(async () => {
    const x = await getMetrics(url);
    return prom.value(x, 'streamio_connections') === clients && prom.value(x, 'streamio_redis_connected') === 1
      && prom.value(x, 'streamio_ring_depth') === 0 ? x : null;
  }, { timeout: 10000, message: `streamio_connections ${clients}, Redis up, rings empty` });
}

describe('GET /metrics', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;

  before(async () => {
    redis = await h.startRedis();
    // the adapter on: entries are published once for other servers, while the two workers
    // share them over local IPC (worker/siblings)
    srv = await h.startStreamio({ CLUSTER_WORKERS: '2', SOCKETIO_REDIS_ADAPTER: 'true' }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

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
      'streamio_redis_reconnects_total', 'streamio_handshakes_total', 'streamio_workers',
      'streamio_sibling_sent_total', 'streamio_sibling_received_total',
      'streamio_polling_held_requests']) {
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
      'streamio_deliveries_total', 'streamio_adapter_published_total', 'streamio_adapter_received_total',
      'streamio_sibling_sent_total', 'streamio_sibling_received_total']) {
      assert.equal(sumOf(f), prom.value(m, f), `${f}: total is the sum over workers`);
    }
    assert.ok(prom.value(m, 'streamio_messages_processed_total') >= 5);
    assert.ok(prom.value(m, 'streamio_deliveries_total') >= 15);
    assert.ok(prom.value(m, 'streamio_adapter_published_total') >= 5);
    assert.ok(prom.value(m, 'streamio_sibling_sent_total') >= 5);
    assert.ok(prom.value(m, 'streamio_streams') >= 1);
    assert.ok(prom.value(m, 'streamio_rooms') >= 1);
    h.closeAllClients();
  }));

  it('moves by the exact traffic: sessions, entries, reads, deliveries, adapter, bytes', logs(async () => {
    const room = h.uniq('metrics.exact');
    const start = await settled(srv.url, 0);
    const client = await h.connectClient(srv.url);
    const box = h.collect(client);
    await h.joinRoom(client, room);
    const before = await settled(srv.url, 1);
    assert.equal(delta(start, before, 'streamio_handshakes_total'), 1);
    assert.equal(delta(start, before, 'streamio_rooms'), 1);
    const n = 7;
    const data = 'd'.repeat(1000);
    for (let i = 0; i < n; i++) await redis.call('XADD', room, '*', 'event', 'm', 'data', `${i}${data}`);
    await box.waitCount(n);
    // bytes from a client: a request body the server reads in full before answering 404
    const body = 'b'.repeat(20000);
    const r = await fetch(`${srv.url}/no-such-path`, { method: 'POST', body });
    await r.arrayBuffer();
    const after = await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      return delta(before, x, 'streamio_received_bytes_total') >= body.length
        && delta(before, x, 'streamio_sent_bytes_total') >= n * data.length ? x : null;
    }, { timeout: 10000, message: 'bytes counters published by the workers\' tick' });
    assert.equal(delta(before, after, 'streamio_messages_processed_total'), n);
    // every XREADGROUP reply lands in the batch histogram; its entries add up to the entries read
    const replies = delta(before, after, 'streamio_xread_total');
    assert.ok(replies >= 1);
    assert.equal(delta(before, after, 'streamio_xread_batch_entries_count'), replies);
    assert.equal(delta(before, after, 'streamio_xread_batch_entries_sum'), n);
    assert.equal(delta(before, after, 'streamio_deliveries_total'), n);
    assert.equal(delta(before, after, 'streamio_adapter_published_total'), n);
    assert.ok(delta(before, after, 'streamio_adapter_published_bytes_total') >= n * data.length);
    // the room's channel reaches the worker holding the client (the reader's own echo included)
    assert.ok(delta(before, after, 'streamio_adapter_received_bytes_total') >= n * data.length);
    const holder = workerWith(after, 'streamio_connections', (v) => v === 1);
    const reader = workerWith(after, 'streamio_messages_processed_total',
      (v, labels) => v - prom.value(before, 'streamio_messages_processed_total', labels) === n);
    // the holder gets the entries from its sibling over local IPC, never from the pub/sub copy
    assert.equal(delta(before, after, 'streamio_adapter_received_total', holder), 0);
    assert.equal(delta(before, after, 'streamio_sibling_sent_total', reader), n);
    assert.equal(delta(before, after, 'streamio_sibling_received_total', holder),
      holder.pid === reader.pid ? 0 : n, `holder ${holder.pid}, reader ${reader.pid}`);
    assert.equal(delta(before, after, 'streamio_slow_clients_total'), 0);
    assert.equal(box.items.length, n);
    // the room's stream sits in one pool, read by the worker that read the entries
    assert.equal(prom.value(after, 'streamio_worker_pools'), prom.value(after, 'streamio_pools'));
    assert.ok(prom.value(after, 'streamio_worker_pools', reader) >= 1);
    h.closeAllClients();
    const end = await settled(srv.url, 0);
    assert.equal(delta(start, end, 'streamio_handshakes_total'), 1);
    assert.equal(delta(start, end, 'streamio_disconnects_total'), 1);
    assert.equal(delta(start, end, 'streamio_rooms'), 0);
  }));

  it('counts and drops a client that stops reading, and only that one', logs(async () => {
    const room = h.uniq('metrics.slow');
    const slow = await h.connectClient(srv.url);
    const fine = await h.connectClient(srv.url);
    const box = h.collect(fine);
    await h.joinRoom(slow, room);
    await h.joinRoom(fine, room);
    const before = await settled(srv.url, 2);
    // the kernel buffers then the server's 4 MiB output queue fill up, and the server drops it
    slow.io.engine.transport.ws._socket.pause();
    const data = 's'.repeat(128 * 1024);
    let sent = 0;
    let m = null;
    while (sent < 400) {
      for (let i = 0; i < 10; i++, sent++) await redis.call('XADD', room, '*', 'event', 'm', 'data', data);
      await box.waitCount(sent, 30000);
      m = await getMetrics(srv.url);
      if (delta(before, m, 'streamio_slow_clients_total') > 0) break;
    }
    assert.ok(sent < 400, `not dropped after ${sent} entries of ${data.length} bytes`);
    m = await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      return prom.value(x, 'streamio_connections') === 1 ? x : null;
    }, { timeout: 10000, message: 'the slow client gone' });
    assert.equal(delta(before, m, 'streamio_slow_clients_total'), 1);
    assert.equal(delta(before, m, 'streamio_disconnects_total'), 1);
    assert.equal(fine.connected, true);
    await redis.call('XADD', room, '*', 'event', 'm', 'data', 'last');
    await box.waitFor((p) => p.message.data === 'last');
    assert.equal(box.items.length, sent + 1);
    h.closeAllClients();
  }));

  // last: it restarts the suite's redis-server
  it('counts every re-established Redis connection, workers and discovery', logs(async () => {
    const room = h.uniq('metrics.reconnect');
    const client = await h.connectClient(srv.url);
    const box = h.collect(client);
    await h.joinRoom(client, room);
    await redis.call('XADD', room, '*', 'event', 'm', 'data', 'before');
    await box.waitCount(1);
    const before = await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      return prom.value(x, 'streamio_redis_connected') === 1
        && prom.value(x, 'streamio_discovery_redis_connected') === 1 ? x : null;
    }, { timeout: 10000, message: 'all Redis connections up' });
    assert.equal(prom.value(before, 'streamio_redis_reconnects_total'), 0);
    assert.equal(prom.value(before, 'streamio_discovery_redis_reconnects_total'), 0);
    const { port } = redis;
    await redis.stop();
    redis = null;
    await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      return prom.value(x, 'streamio_redis_connected') === 0
        && prom.value(x, 'streamio_discovery_redis_connected') === 0 ? x : null;
    }, { timeout: 15000, message: 'Redis seen down by workers and master' });
    redis = await h.startRedis({ port });
    const m = await h.waitUntil(async () => {
      const x = await getMetrics(srv.url);
      return prom.value(x, 'streamio_redis_connected') === 1
        && prom.value(x, 'streamio_discovery_redis_connected') === 1 ? x : null;
    }, { timeout: 20000, message: 'all Redis connections up again' });
    // each worker re-established at least its reader service connection and its pub/sub one
    const workers = m.get('streamio_redis_reconnects_total').samples.filter((s) => s.labels.worker !== undefined);
    assert.equal(workers.length, 2);
    for (const s of workers) assert.ok(s.value >= 2, `worker ${s.labels.worker}: ${s.value} reconnects`);
    assert.equal(prom.value(m, 'streamio_redis_reconnects_total'), workers.reduce((a, s) => a + s.value, 0));
    assert.ok(prom.value(m, 'streamio_discovery_redis_reconnects_total') >= 1);
    // and the stream, gone with the old Redis, is read again once written to
    await h.waitUntil(async () => {
      await redis.call('XADD', room, '*', 'event', 'm', 'data', 'after');
      return box.items.length > 1 ? true : null;
    }, { timeout: 20000, interval: 1000, message: 'an entry delivered after the restart' });
    h.closeAllClients();
  }));
});
