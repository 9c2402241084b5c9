#!/usr/bin/env node
'use strict';
/*
 * The producer of scripts/bench-cluster.js: bench/producer's entries (stream <prefix><k % rooms>,
 * fields event=bench, b="<k / rooms>:<CLOCK_MONOTONIC ns>", data) at the maximum rate (or
 * paced: entry k due k / --rate seconds after the start), written
 * through the npm `redis` v4 client of the test suite, so that one producer writes to a single
 * server and to a Redis Cluster alike (createCluster routes each XADD to its slot's master and
 * pipelines per node). Up to --window commands in flight.
 *
 *   node scripts/lib/bench-producer.js --port P [--cluster] --rooms N --count N [--window 512]
 *                                      [--rate N] [--prefix bench.r] [--warm] [--timeout S]
 *
 * --warm adds one entry b=w to every stream and waits until the server under test has consumed
 * (deleted) them all. Loopback only; bounded by --count and --timeout.
 */
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const { createClient, createCluster } = require(path.join(ROOT, 'tests', 'integration', 'node_modules', 'redis'));
const DATA = '{"user_id":123,"message":"Hello from the bench producer"}';

function args(argv) {
  const o = { port: 0, cluster: false, rooms: 100, count: 10000, window: 512, rate: 0, prefix: 'bench.r', warm: false, timeout: 120 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cluster') o.cluster = true;
    else if (a === '--warm') o.warm = true;
    else if (['--port', '--rooms', '--count', '--window', '--rate', '--timeout'].includes(a)) o[a.slice(2)] = Number(argv[++i]);
    else if (a === '--prefix') o.prefix = argv[++i];
    else throw new Error(`bench-producer: unknown argument ${a}`);
  }
  if (!o.port) throw new Error('bench-producer: --port is required');
  return o;
}

async function main() {
  const o = args(process.argv.slice(2));
  const url = `redis://127.0.0.1:${o.port}`;
  const c = o.cluster ? createCluster({ rootNodes: [{ url }] }) : createClient({ url });
  c.on('error', () => {});
  await c.connect();
  const deadline = Date.now() + o.timeout * 1000;
  if (o.warm) {
    for (let i = 0; i < o.rooms; i++) await c.xAdd(`${o.prefix}${i}`, '*', { event: 'bench', b: 'w', data: DATA });
    for (;;) {
      let left = 0;
      for (let i = 0; i < o.rooms; i++) left += await c.xLen(`${o.prefix}${i}`);
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`bench-producer: ${left} warm-up entries not consumed`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } else {
    let next = 0;
    const start = Date.now();
    const worker = async () => {
      while (next < o.count && Date.now() < deadline) {
        const k = next++;
        const wait = o.rate ? start + (k * 1000) / o.rate - Date.now() : 0;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const b = `${Math.floor(k / o.rooms)}:${process.hrtime.bigint()}`;
        await c.xAdd(`${o.prefix}${k % o.rooms}`, '*', { event: 'bench', b, data: DATA });
      }
    };
    await Promise.all(Array.from({ length: o.window }, worker));
  }
  await c.quit();
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
