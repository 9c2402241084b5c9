#!/usr/bin/env node
'use strict';
/*
 * Formats the results.jsonl of scripts/bench.sh as one side-by-side table per scenario:
 * streamio, Node, and the ratio (written so that > 1 means streamio is better).
 *
 *   node bench/report.js results.jsonl [command line] [mode]
 */
const fs = require('node:fs');
const { median, mergeRounds } = require('./rounds');

const [file, cmd = '', mode = ''] = process.argv.slice(2);
// a scenario run in rounds (adapter) shows each label's medians (bench/rounds.js)
const rows = mergeRounds(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));

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
  ['wire_bytes_per_delivery', 'bytes read by clients / delivery', 'low', 0],
  ['compressed_messages', 'compressed messages received (whole run)', null, 0],
  // meaningless with a handful of clients (the server's own memory dominates)
  ['rss_bytes_per_conn', 'server RSS bytes/connection (joined, before the load)', 'low', 0, 100],
  ['redis_cpu_us', 'redis CPU µs', null, 0],
  ['redis_cmd_us_per_entry', 'redis command µs/entry', 'low', 1],
  ['redis_reader_cmd_us_per_entry', 'redis command µs/entry, XADD left out (the server\'s own)', 'low', 2],
  ['redis_in_bytes_per_entry', 'redis bytes read / entry', 'low', 0],
  ['redis_out_bytes_per_entry', 'redis bytes written / entry', 'low', 0],
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
  ['loadgen_cpu_us_per_conn', 'loadgen CPU µs/connection', null, 1],
  ['server_procs', 'server processes', null, 0],
];

const CONNECT100K = [
  ['clients', 'clients', null, 0],
  ['connected', 'connected', null, 0],
  ['failed', 'failed', null, 0],
  ['loadgens', 'load generators (one loopback address each)', null, 0],
  ['workers', 'server processes (workers)', null, 0],
  ['handshakes_per_s', 'connect+handshake+join/s', 'high', 0],
  ['server_rss_kb_after', 'server RSS total KB (all connected)', 'low', 0],
  ['rss_bytes_per_conn', 'RSS bytes/connection', 'low', 0],
  ['idle_cpu_pct', 'idle CPU % of one core (all connected)', 'low', 2],
  ['broadcast_ms', 'one broadcast to all, ms (last receipt)', 'low', 1],
  ['broadcast_p50_ms', 'one broadcast, half the clients, ms', 'low', 1],
  ['received', 'deliveries of that broadcast', null, 0],
  ['lost', 'lost', null, 0],
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
  const how = f.uring ? 'one io_uring send (one submit per round)' : 'one write()';
  out.push(`floor: ${how} of a ${f.bytes}-byte frame to each of ${f.sockets} loopback sockets, ${f.rate}/s: `
    + `${f.cpu_us_per_write.toFixed(2)} µs of sender CPU per write`);
}
for (const f of rows.filter((r) => r.scenario === 'connfloor')) {
  out.push(`connect floor (bench/connfloor, ${f.clients} clients, ${f.parallel} in flight): `
    + `${f.handshakes_per_s}/s, CPU per connection ${f.client_cpu_us_per_conn.toFixed(1)} µs client `
    + `+ ${f.server_cpu_us_per_conn.toFixed(1)} µs server`);
}
const scenarios = [...new Set(rows.filter((r) => r.scenario !== 'floor' && r.scenario !== 'connfloor')
  .map((r) => r.scenario))];
for (const s of scenarios) {
  const rs = rows.filter((r) => r.scenario === s);
  const labels = rs.map((r) => r.label);
  const spec = rs.some((r) => r.mode === 'connect100k') ? CONNECT100K
    : rs.some((r) => r.mode === 'connect') ? CONNECT : FANOUT;
  const first = rs.find((r) => !r.error) || {};
  out.push('');
  out.push(`## ${s}: ${first.clients ?? '?'} clients, ${first.rooms ?? '?'} rooms` +
    (String(first.mode).startsWith('connect') ? '' : `, ${first.entries ?? '?'} entries`));
  const header = ['metric', ...labels];
  const sio = rs.find((r) => r.server === 'streamio');
  const nod = rs.find((r) => r.server === 'node');
  const base = rs.find((r) => r.server === 'base');
  if (sio && nod) header.push('ratio');
  if (sio && base) header.push('vs base');
  const table = [header];
  for (const e of rs.filter((r) => r.error)) table.push([`error (${e.label})`, e.error]);
  for (const [k, label, better, d, minClients = 0] of spec) {
    if ((first.clients ?? 0) < minClients) continue;
    const line = [label, ...rs.map((r) => fmt(r[k], d))];
    if (sio && nod) line.push(ratio(sio[k], nod[k], better === 'high' ? 'high' : better));
    if (sio && base) line.push(ratio(sio[k], base[k], better === 'high' ? 'high' : better));
    table.push(line);
  }
  const w = header.map((_, i) => Math.max(...table.map((l) => (l[i] ?? '').length)));
  for (const l of table) out.push(l.map((c, i) => (i === 0 ? (c ?? '').padEnd(w[i]) : (c ?? '').padStart(w[i]))).join('  '));
  // Redis commands of the load window (INFO commandstats), busiest first
  for (const r of rs.filter((x) => x.redis_cmds && x.mode === 'fanout')) {
    const top = Object.entries(r.redis_cmds).sort((a, b) => b[1].usec - a[1].usec).slice(0, 8);
    if (top.length) out.push(`redis commands (${r.label}): ${top.map(([n, c]) => `${n} ${c.calls}×/${c.usec} µs`).join(', ')}`);
  }
}
// The adapter's cost per delivery, against the same binary with it off: the ratio of the medians
// and, when run in rounds, the median of the ratios taken inside each round.
const cpu = (r) => r.server_cpu_us_per_delivery;
for (const scen of ['adapter', 'adapter-2000']) {
  const inScen = rows.filter((x) => x.scenario === scen && x.server !== 'node');
  const inRounds = inScen.filter((x) => x.rounds);
  for (const k of [...new Set(inRounds.flatMap((r) => r.rounds.map((x) => x.round)))].sort((a, b) => a - b)) {
    const rs = inRounds.flatMap((r) => r.rounds.filter((x) => x.round === k));
    out.push(`${scen} round ${k}, CPU µs/delivery: ${inRounds.map((r) => {
      const x = rs.find((y) => y.label === r.label);
      return `${r.label} ${x && cpu(x) > 0 ? cpu(x).toFixed(3) : '-'}`;
    }).join(', ')}`);
  }
  for (const r of inScen.filter((x) => !x.label.endsWith('-adapter-false'))) {
    const aoff = inScen.find((x) => x.server === r.server && x.label.endsWith('-adapter-false'));
    if (aoff && cpu(aoff) > 0 && cpu(r) > 0) {
      const same = (r.rounds ?? []).map((x) => [x, aoff.rounds?.find((y) => y.round === x.round)])
        .filter(([x, y]) => y && cpu(x) > 0 && cpu(y) > 0).map(([x, y]) => cpu(x) / cpu(y));
      out.push(`${scen} cost (${r.label}): CPU per delivery ${(cpu(r) / cpu(aoff)).toFixed(2)}x of adapter off`
        + (same.length ? `${r.rounds ? ' (medians)' : ''}; same round ${median(same).toFixed(2)}x `
          + `(median of ${same.map((x) => x.toFixed(2)).join(', ')})` : ''));
    }
    // what the adapter adds to Redis' traffic for each entry (one broadcast each)
    if (aoff && aoff.redis_in_bytes_per_entry !== undefined && r.redis_in_bytes_per_entry !== undefined) {
      out.push(`${scen} Redis bytes per broadcast (${r.label}): +${(r.redis_in_bytes_per_entry
        - aoff.redis_in_bytes_per_entry).toFixed(0)} read, +${(r.redis_out_bytes_per_entry
        - aoff.redis_out_bytes_per_entry).toFixed(0)} written (to the one subscriber of the server)`);
    }
  }
}
// A million connections on paper, from what 100k measured.
for (const r of rows.filter((x) => x.mode === 'connect100k' && x.connected > 0)) {
  const gb = (r.rss_bytes_per_conn * 1e6) / 2 ** 30;
  out.push(`1M on paper (${r.label}): ${gb.toFixed(2)} GiB of server RSS, `
    + `${((r.idle_cpu_pct * 1e6) / r.connected).toFixed(1)} % of a core idle, `
    + `${Math.ceil(1e6 / (r.fd_limit - 1000))}+ processes at ${r.fd_limit} descriptors each, `
    + `${(1e6 / r.handshakes_per_s).toFixed(0)} s to connect everyone at the measured rate, `
    + `one broadcast ~${((r.broadcast_ms * 1e6) / r.connected / 1000).toFixed(1)} s if it scales linearly`);
}
// The soak's verdict: memory and descriptors flat over the run, every delivery exactly once.
for (const r of rows.filter((x) => x.soak)) {
  const s = r.soak;
  out.push(`soak ${r.label} (${r.clients} clients, ${r.soak_rate} entries/s, ${r.soak_s} s): ${s.verdict} — `
    + `RSS ${s.rss_kb_first} -> ${s.rss_kb_last} KB (${s.rss_pct_min}..${s.rss_pct_max} %), `
    + `descriptors ${s.fds_first} -> ${s.fds_last} (${s.fds_pct_min}..${s.fds_pct_max} %), ${s.samples} samples; `
    + `deliveries ${r.received}/${r.expected}, lost ${r.lost}, twice ${r.dups}`);
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
