'use strict';
/*
 * Results of a scenario run in rounds (scripts/bench.sh, scenario adapter: rows with a `round`,
 * round 0 the discarded warm-up) as one row per label for the tables and charts: each number the
 * median over the rounds, except lost and duplicates, the worst round's. `rounds` keeps the
 * round's rows; `file_label` names the files of the round whose CPU per delivery is the median.
 */

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const WORST = new Set(['lost', 'dups']);

function mergeRounds(rows) {
  const out = [];
  const merged = new Map();
  for (const r of rows) {
    if (r.round === undefined) out.push(r);
    else if (r.round > 0) {
      const key = `${r.scenario}\n${r.label}`;
      if (!merged.has(key)) {
        merged.set(key, []);
        out.push(key);
      }
      merged.get(key).push(r);
    }
  }
  return out.map((r) => {
    if (typeof r !== 'string') return r;
    const rs = merged.get(r);
    const ok = rs.filter((x) => !x.error);
    if (!ok.length) return rs[0];
    const row = { ...ok[0], rounds: rs };
    for (const [k, v] of Object.entries(ok[0])) {
      if (typeof v !== 'number' || k === 'round') continue;
      const vs = ok.map((x) => x[k]).filter((x) => typeof x === 'number');
      row[k] = WORST.has(k) ? Math.max(...vs) : median(vs);
    }
    const cpu = (x) => x.server_cpu_us_per_delivery;
    const mid = ok.filter((x) => typeof cpu(x) === 'number').sort((a, b) => cpu(a) - cpu(b));
    row.file_label = `${row.label}.r${(mid[(mid.length - 1) >> 1] ?? ok[0]).round}`;
    delete row.round;
    return row;
  });
}

module.exports = { median, mergeRounds };
