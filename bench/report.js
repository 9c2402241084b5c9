#!/usr/bin/env node
'use strict';
/*
 * Formats the results.jsonl of scripts/bench.sh as one side-by-side table per scenario:
 * streamio, Node, and the ratio (written so that > 1 means streamio is better).
 *
 *   node bench/report.js results.jsonl [command line] [mode]
 */
const fs = require('node:fs');

const [file, cmd = '', mode = ''] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

// [key, label, better: 'high' | 'low' | null, digits]
const FANOUT = [
  ['received', 'deliveries received', null, 0],
  ['expected', 'deliveries expected', null, 0],
  ['lost', 'lost', null, 0],
  ['dups', 'duplicates', null, 0],
  ['deliveries_per_s', 'deliveries/s', 'high', 0],
  ['server_cpu_us_per_delivery', 'server CPU µs/delivery', 'low', 3],
  ['server_cpu_pct', 'server CPU % (of one core)', null, 1],
  ['lat_p50_ms', 'latency p50 ms', 'low', 3],
  ['lat_p99_ms', 'latency p99 ms', 'low', 3],
  ['lat_p999_ms', 'latency p99.9 ms', 'low', 3],
  ['lat_max_ms', 'latency max ms', 'low', 3],
  ['redis_cpu_us', 'redis CPU µs', null, 0],
  ['redis_cmd_us_per_entry', 'redis command µs/entry', 'low', 1],
  ['loadgen_cpu_pct', 'loadgen CPU % (harness)', null, 1],
  ['producer_cpu_us', 'producer CPU µs (harness)', null, 0],
  ['server_procs', 'server processes', null, 0],
];
const CONNECT = [
  ['connected', 'clients connected', null, 0],
  ['failed', 'failed', null, 0],
  ['handshakes_per_s', 'connect+handshake/s', 'high', 0],
  ['server_rss_kb_before', 'server RSS before KB', null, 0],
  ['server_rss_kb_after', 'server RSS after KB', null, 0],
  ['rss_bytes_per_conn', 'RSS bytes/connection', 'low', 0],
  ['server_cpu_us_per_handshake', 'server CPU µs/connection', 'low', 1],
  ['loadgen_cpu_us', 'loadgen CPU µs (harness)', null, 0],
  ['server_procs', 'server processes', null, 0],
];

const fmt = (v, d) => (v === undefined || v === null ? '-' : typeof v === 'number' ? v.toFixed(d) : String(v));

function ratio(a, b, better) {
  if (!better || typeof a !== 'number' || typeof b !== 'number' || a <= 0 || b <= 0) return '';
  return `${(better === 'high' ? a / b : b / a).toFixed(1)}x`;
}

const out = [];
out.push(`streamio vs Node anchor — ${cmd} (${mode}) — ${new Date().toISOString()}`);
out.push('ratio column: how many times better streamio is (streamio/node for rates, node/streamio for costs)');
if (rows.some((r) => r.server === 'base')) out.push('vs base column: the same for streamio against the baseline binary (BENCH_BASELINE), < 1 is a regression');
for (const f of rows.filter((r) => r.scenario === 'floor')) {
  out.push(`floor: one write() of a ${f.bytes}-byte frame to each of ${f.sockets} loopback sockets, ${f.rate}/s: `
    + `${f.cpu_us_per_write.toFixed(2)} µs of sender CPU per write`);
}
const scenarios = [...new Set(rows.filter((r) => r.scenario !== 'floor').map((r) => r.scenario))];
for (const s of scenarios) {
  const rs = rows.filter((r) => r.scenario === s);
  const labels = rs.map((r) => r.label);
  const spec = rs.some((r) => r.mode === 'connect') ? CONNECT : FANOUT;
  const first = rs.find((r) => !r.error) || {};
  out.push('');
  out.push(`## ${s}: ${first.clients ?? '?'} clients, ${first.rooms ?? '?'} rooms` +
    (first.mode === 'connect' ? '' : `, ${first.entries ?? '?'} entries`));
  const header = ['metric', ...labels];
  const sio = rs.find((r) => r.server === 'streamio');
  const nod = rs.find((r) => r.server === 'node');
  const base = rs.find((r) => r.server === 'base');
  if (sio && nod) header.push('ratio');
  if (sio && base) header.push('vs base');
  const table = [header];
  for (const e of rs.filter((r) => r.error)) table.push([`error (${e.label})`, e.error]);
  for (const [k, label, better, d] of spec) {
    const line = [label, ...rs.map((r) => fmt(r[k], d))];
    if (sio && nod) line.push(ratio(sio[k], nod[k], better === 'high' ? 'high' : better));
    if (sio && base) line.push(ratio(sio[k], base[k], better === 'high' ? 'high' : better));
    table.push(line);
  }
  const w = header.map((_, i) => Math.max(...table.map((l) => (l[i] ?? '').length)));
  for (const l of table) out.push(l.map((c, i) => (i === 0 ? (c ?? '').padEnd(w[i]) : (c ?? '').padStart(w[i]))).join('  '));
  // Redis commands of the load window (INFO commandstats), busiest first
  for (const r of rs.filter((x) => x.redis_cmds && x.mode !== 'connect')) {
    const top = Object.entries(r.redis_cmds).sort((a, b) => b[1].usec - a[1].usec).slice(0, 8);
    if (top.length) out.push(`redis commands (${r.label}): ${top.map(([n, c]) => `${n} ${c.calls}×/${c.usec} µs`).join(', ')}`);
  }
}
// Worker scaling: the scaling scenario (2 workers) against fanout-max (1 worker).
const one = rows.find((r) => r.scenario === 'fanout-max' && r.server === 'streamio');
const two = rows.find((r) => r.scenario === 'scaling' && r.server === 'streamio');
if (one && two && one.deliveries_per_s && two.deliveries_per_s) {
  out.push('');
  out.push(`worker scaling (streamio): 2 workers / 1 worker deliveries/s = ${(two.deliveries_per_s / one.deliveries_per_s).toFixed(2)}x`);
}
const n1 = rows.find((r) => r.scenario === 'fanout-max' && r.server === 'node');
const n2 = rows.find((r) => r.scenario === 'scaling' && r.server === 'node');
if (n1 && n2 && n1.deliveries_per_s && n2.deliveries_per_s) {
  out.push(`worker scaling (node cluster + redis adapter): 2 / 1 = ${(n2.deliveries_per_s / n1.deliveries_per_s).toFixed(2)}x`);
}
process.stdout.write(out.join('\n') + '\n');
