'use strict';
// PRIORITY_STREAMS: pools of their own in the master, and a lane (Redis connection) of their own
// in the worker, beside MAX_CONCURRENT_POOLS=1 ordinary lane.
const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const blockedClients = async (redis) => {
  const info = await redis.call('INFO', 'clients');
  return Number(/blocked_clients:(\d+)/.exec(info)[1]);
};

describe('priority streams (PRIORITY_STREAMS, MAX_CONCURRENT_POOLS=1)', { timeout: 90000, skip: h.ANCHOR_SKIP }, () => {
  let redis;
  let srv;
  const prio = h.uniq('pr.urgent');
  const ordinary = [h.uniq('pr.plain'), h.uniq('pr.plain')];

  before(async () => {
    redis = await h.startRedis();
    for (const s of [prio, ...ordinary]) await redis.call('XADD', s, '*', 'event', 'seed', 'data', '0');
    srv = await h.startStreamio({
      CLUSTER_WORKERS: '1',
      STREAM_PATTERN: 'pr.*',
      PRIORITY_STREAMS: `${prio},pr.absent`,
      MAX_CONCURRENT_POOLS: '1',
      READ_BLOCK_MS: '5000',
    }, { redis });
  });

  const logs = h.stopAfter(() => ({ srv, redis }));

  it('reads the priority stream on a connection of its own, blocked beside the ordinary lane', logs(async () => {
    await h.waitUntil(async () => (await redis.call('XLEN', prio)) === 0, { timeout: 10000, message: `${prio} drained` });
    // one blocking XREADGROUP for the ordinary lane (both plain streams) and one for the priority lane
    await h.waitUntil(async () => (await blockedClients(redis)) === 2,
      { timeout: 10000, message: 'two blocked XREADGROUP connections' });
    const body = (await h.healthRetry(srv)).body;
    assert.equal(body.streams, 3);
    assert.equal(body.pools, 2); // the priority stream never shares a pool
  }));

  it('delivers priority and ordinary entries with the same payload shape', logs(async () => {
    const s = await h.connectClient(srv.url);
    const inbox = h.collect(s);
    await h.joinRoom(s, prio);
    await h.joinRoom(s, ordinary[0]);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push([ordinary[0], await redis.call('XADD', ordinary[0], '*', 'event', 'plain', 'data', `{"i":${i}}`)]);
      ids.push([prio, await redis.call('XADD', prio, '*', 'event', 'urgent', 'data', `{"i":${i}}`)]);
    }
    // up to an end marker in each stream: anything more on either lane would come before it
    const items = await h.untilEnd(redis, inbox, [prio, ordinary[0]]);
    assert.equal(items.length, 6);
    for (const room of [prio, ordinary[0]]) {
      assert.deepStrictEqual(items.filter((m) => m.roomId === room),
        ids.filter(([r]) => r === room).map(([r, id], i) => ({
          from: 'service',
          message: { event: room === prio ? 'urgent' : 'plain', data: { i } },
          roomId: r,
          event: room === prio ? 'urgent' : 'plain',
          messageId: id,
        })));
    }
  }));
});
