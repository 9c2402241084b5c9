'use strict';
/*
 * A strict parser for the Prometheus text exposition format 0.0.4, for tests: it throws on the
 * first line that does not follow the format, on a family whose samples are not contiguous, on
 * a TYPE/HELP given twice or after its samples, on duplicate series, and on histograms whose
 * buckets are not cumulative or do not end with le="+Inf" equal to _count.
 * Returns Map(family name -> {type, help, samples: [{name, labels, value}]}).
 */
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (${VALUE})(?: (-?\\d+))?$`);
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SUFFIXES = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

function parseLabels(s, where) {
  const labels = {};
  let i = 0;
  const re = new RegExp(`^(${LABEL})="`);
  while (i < s.length) {
    const m = re.exec(s.slice(i));
    if (!m) throw new Error(`${where}: bad label at "${s.slice(i)}"`);
    i += m[0].length;
    let v = '';
    for (;;) {
      if (i >= s.length) throw new Error(`${where}: unterminated label value`);
      const c = s[i++];
      if (c === '"') break;
      if (c === '\\') {
        const e = s[i++];
        if (e === 'n') v += '\n';
        else if (e === '\\' || e === '"') v += e;
        else throw new Error(`${where}: bad escape \\${e}`);
      } else if (c === '\n') {
        throw new Error(`${where}: raw newline in a label value`);
      } else {
        v += c;
      }
    }
    if (m[1] in labels) throw new Error(`${where}: label ${m[1]} twice`);
    labels[m[1]] = v;
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`${where}: expected "," after a label`);
      i++;
    }
  }
  return labels;
}

function familyOf(name, families) {
  for (const [fam, f] of families) {
    const sfx = SUFFIXES[f.type];
    if (!sfx) {
      if (fam === name) return fam;
    } else if (sfx.some((x) => name === fam + x)) {
      return fam;
    }
  }
  return name;
}

function parse(text) {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map();
  const closed = new Set();
  const series = new Set();
  let current = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, n) => {
    const where = `line ${n + 1} "${line}"`;
    if (line === '') throw new Error(`${where}: empty line`);
    let m;
    const fam = (name) => {
      if (!families.has(name)) families.set(name, { type: 'untyped', help: null, samples: [], typed: false });
      return families.get(name);
    };
    const enter = (name) => {
      if (current !== name) {
        if (closed.has(name)) throw new Error(`${where}: family ${name} is not contiguous`);
        if (current) closed.add(current);
        current = name;
      }
    };
    if ((m = HELP.exec(line))) {
      const f = fam(m[1]);
      enter(m[1]);
      if (f.help !== null) throw new Error(`${where}: second HELP`);
      if (f.samples.length) throw new Error(`${where}: HELP after samples`);
      f.help = m[2];
    } else if ((m = TYPE.exec(line))) {
      const f = fam(m[1]);
      enter(m[1]);
      if (f.typed) throw new Error(`${where}: second TYPE`);
      if (f.samples.length) throw new Error(`${where}: TYPE after samples`);
      f.type = m[2];
      f.typed = true;
    } else if (line.startsWith('#')) {
      // other comments are allowed
    } else if ((m = SAMPLE.exec(line))) {
      const name = familyOf(m[1], families);
      const f = fam(name);
      enter(name);
      const labels = m[2] === undefined ? {} : parseLabels(m[2], where);
      const key = `${m[1]}{${Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',')}}`;
      if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
      series.add(key);
      if (f.type === 'counter' && Number(m[3]) < 0) throw new Error(`${where}: negative counter`);
      f.samples.push({ name: m[1], labels, value: Number(m[3].replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity')) });
    } else {
      throw new Error(`${where}: not a HELP, TYPE or sample line`);
    }
  });
  for (const [name, f] of families) {
    if (f.type === 'histogram') checkHistogram(name, f);
    delete f.typed;
  }
  return families;
}

function checkHistogram(name, f) {
  const groups = new Map();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!groups.has(key)) groups.set(key, { buckets: [], sum: null, count: null });
    const g = groups.get(key);
    if (s.name === `${name}_bucket`) {
      if (le === undefined) throw new Error(`${name}: bucket without le`);
      g.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), v: s.value });
    } else if (s.name === `${name}_sum`) {
      g.sum = s.value;
    } else if (s.name === `${name}_count`) {
      g.count = s.value;
    }
  }
  for (const [key, g] of groups) {
    if (g.sum === null || g.count === null) throw new Error(`${name}${key}: _sum and _count required`);
    if (!g.buckets.length || g.buckets[g.buckets.length - 1].le !== Infinity) {
      throw new Error(`${name}${key}: the last bucket must be le="+Inf"`);
    }
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i].le > g.buckets[i - 1].le)) throw new Error(`${name}${key}: le not increasing`);
      if (g.buckets[i].v < g.buckets[i - 1].v) throw new Error(`${name}${key}: buckets not cumulative`);
    }
    if (g.buckets[g.buckets.length - 1].v !== g.count) throw new Error(`${name}${key}: +Inf != _count`);
  }
}

// The value of the sample `name` whose labels equal `labels` exactly (undefined when absent).
function value(families, name, labels = {}) {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const a = Object.keys(s.labels);
      if (a.length === Object.keys(labels).length && a.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return undefined;
}

module.exports = { parse, value };
