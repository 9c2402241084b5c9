#!/usr/bin/env node
'use strict';
/*
 * Draws one chart per scenario of a `make bench` run with gnuplot, beside its report:
 * <out>/<scenario>.svg. Fan-out scenarios: the latency distribution (from the loadgen's
 * <scenario>-<label>.lat files) and the server's CPU per delivery, with the loopback floor of the
 * same run where it applies; connect scenarios: handshakes/s, RSS per connection and CPU. streamio
 * is drawn in blue, the Node anchor in orange.
 *
 *   node bench/charts.js results.jsonl OUTDIR
 *
 * Writes the gnuplot scripts and their data under OUTDIR/charts/ (so a chart can be redrawn or
 * restyled by hand) and runs `gnuplot` (Debian's gnuplot-nox) on each.
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { mergeRounds } = require('./rounds');

const [file, outDir] = process.argv.slice(2);
if (!file || !outDir) {
  console.error('usage: node bench/charts.js results.jsonl OUTDIR');
  process.exit(2);
}
// a scenario run in rounds (adapter): medians, and the latency of the median round
const rows = mergeRounds(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
const work = path.join(outDir, 'charts');
fs.mkdirSync(work, { recursive: true });

const BLUE = 0x1f77b4;
const ORANGE = 0xff7f0e;
const SHADES = [BLUE, 0x4f9fd8, 0x0b4f80, 0x7fbfe8]; // several streamio configurations
const colour = (r, i) => (r.server === 'node' ? ORANGE : SHADES[i % SHADES.length]);
const q = (s) => `"${String(s).replace(/["\\]/g, '')}"`;

// percentile -> "nines" (50 % -> 0.3, 90 % -> 1, 99 % -> 2 ...), so the tail gets the room
const nines = (p) => -Math.log10(1 - p / 100);

function latencyFile(scen, r) {
  const src = path.join(outDir, `${scen}-${r.file_label ?? r.label}.lat`);
  if (!fs.existsSync(src)) return null;
  const pts = fs.readFileSync(src, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => l.split(' ').map(Number));
  if (!pts.length) return null;
  const body = pts.filter(([p]) => p < 100).map(([p, ms]) => `${nines(p).toFixed(4)} ${ms}`);
  const last = pts.filter(([p]) => p < 100).pop();
  const max = pts.find(([p]) => p === 100);
  if (max) body.push(`${((last ? nines(last[0]) : 0) + 0.4).toFixed(4)} ${max[1]}`);
  const dst = path.join(work, `${scen}-${r.label}.lat.dat`);
  fs.writeFileSync(dst, body.join('\n') + '\n');
  return dst;
}

// one bar per row of `rs`: value fn(r); returns the plot lines of a panel
function bars(scen, name, rs, fn) {
  const dat = path.join(work, `${scen}-${name}.dat`);
  const lines = rs.map((r, i) => [r.label, fn(r), colour(r, i)])
    .filter(([, v]) => typeof v === 'number' && Number.isFinite(v));
  fs.writeFileSync(dat, lines.map(([l, v, c]) => `${q(l)} ${v} ${c}`).join('\n') + '\n');
  return { dat, n: lines.length, max: Math.max(0, ...lines.map(([, v]) => v)) };
}

function barPanel(title, ylabel, b, extra = []) {
  if (!b.n) return [`set title ${q(`${title}: no data`)}`, 'unset border', 'unset tics', 'plot [0:1][0:1] NaN notitle', 'set border', 'set tics'];
  return [
    `set title ${q(title)}`,
    'unset logscale', `set ylabel ${q(ylabel)}`, 'set xlabel ""',
    'set style fill solid 0.85 border -1', 'set boxwidth 0.6', 'set xtics rotate by -20 nomirror',
    'set ytics nomirror', 'set grid ytics', `set yrange [0:${(b.max * 1.25) || 1}]`, `set xrange [-0.6:${b.n - 0.4}]`,
    'unset key',
    ...extra,
    `plot ${q(b.dat)} using 0:2:3:xtic(1) with boxes lc rgb variable, `
      + `'' using 0:2:($2 >= 100 ? sprintf("%.0f", $2) : sprintf("%.3g", $2)) with labels offset 0,0.7 font ",9"`,
    'unset label', 'unset arrow',
  ];
}

// the batched floor where it was measured: how streamio writes where the kernel allows io_uring
const floorAt = (rate) => {
  const fs = rows.filter((r) => r.scenario === 'floor' && r.rate === rate);
  return fs.find((r) => r.uring) || fs[0];
};

function fanoutChart(scen, rs) {
  const lat = rs.map((r, i) => [r, latencyFile(scen, r), i]).filter(([, f]) => f);
  const latPanel = lat.length ? [
    `set title ${q(`${scen}: delivery latency (producer XADD to client receipt)`)}`,
    'set logscale y', 'set ylabel "ms (log)"', 'set xlabel "percentile"',
    'set xtics ("50%%" 0.301, "90%%" 1, "99%%" 2, "99.9%%" 3, "99.99%%" 4, "99.999%%" 5) nomirror',
    'set xrange [0:*]', 'set grid xtics ytics', 'set key bottom right Left reverse box opaque',
    `plot ${lat.map(([r, f, i]) => `${q(f)} using 1:2 with linespoints pt 7 ps 0.4 lw 2 lc rgb ${colour(r, i)} title ${q(r.label)}`).join(', ')}`,
    'unset logscale', 'unset grid', 'set xtics autofreq', 'set xrange [*:*]',
  ] : ['set title "no latency samples"', 'unset border', 'unset tics', 'plot [0:1][0:1] NaN notitle', 'set border', 'set tics'];
  const cpu = bars(scen, 'cpu', rs, (r) => r.server_cpu_us_per_delivery);
  const m = /^fanout-(\d+)$/.exec(scen);
  const floor = m && floorAt(Number(m[1]));
  const extra = floor ? [
    `set arrow from graph 0, first ${floor.cpu_us_per_write} to graph 1, first ${floor.cpu_us_per_write} nohead dt 2 lw 2 lc rgb "#555555"`,
    `set label ${q(`loopback floor${floor.uring ? ' (io_uring batch)' : ''} ${floor.cpu_us_per_write.toFixed(2)} µs/write`)} at graph 0.02, first ${floor.cpu_us_per_write} offset 0,0.6 front font ",9"`,
  ] : [];
  if (floor && floor.cpu_us_per_write > cpu.max) cpu.max = floor.cpu_us_per_write;
  return { size: '1100,460', layout: '1,2', panels: [latPanel, barPanel('server CPU per delivery', 'µs', cpu, extra)] };
}

function connectChart(scen, rs) {
  const panels = [
    barPanel('connect + handshake + join /s', 'per second', bars(scen, 'hs', rs, (r) => r.handshakes_per_s)),
    barPanel('server RSS per connection', 'bytes', bars(scen, 'rss', rs, (r) => r.rss_bytes_per_conn)),
  ];
  if (rs.some((r) => r.mode === 'connect100k')) {
    panels.push(barPanel('idle CPU, all connected', '% of one core', bars(scen, 'idle', rs, (r) => r.idle_cpu_pct)));
    panels.push(barPanel('one broadcast to everyone', 'ms to the last client', bars(scen, 'bcast', rs, (r) => r.broadcast_ms)));
  } else {
    panels.push(barPanel('server CPU per connection', 'µs', bars(scen, 'cpu', rs, (r) => r.server_cpu_us_per_handshake)));
  }
  return { size: `${360 * panels.length},420`, layout: `1,${panels.length}`, panels };
}

let drawn = 0;
const scenarios = [...new Set(rows.filter((r) => r.scenario !== 'floor' && r.scenario !== 'connfloor')
  .map((r) => r.scenario))];
for (const scen of scenarios) {
  const rs = rows.filter((r) => r.scenario === scen && !r.error);
  if (!rs.length) continue;
  const chart = String(rs[0].mode).startsWith('connect') ? connectChart(scen, rs) : fanoutChart(scen, rs);
  const svg = path.join(outDir, `${scen}.svg`);
  const gp = [
    `set terminal svg size ${chart.size} dynamic enhanced font "sans,11" background "white"`,
    `set output ${q(svg)}`, 'set encoding utf8',
    `set multiplot layout ${chart.layout} title ${q(`${scen} — streamio (blue) vs Node anchor (orange), ${rs.some((r) => r.rounds) ? 'streamio: medians of rounds' : 'one run'}`)}`,
    ...chart.panels.flat(), 'unset multiplot', 'set output',
  ].join('\n') + '\n';
  const gpFile = path.join(work, `${scen}.gp`);
  fs.writeFileSync(gpFile, gp);
  execFileSync('gnuplot', [gpFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  drawn += 1;
  console.log(`chart: ${svg}`);
}
if (!drawn) console.log('charts: no scenario with results');
