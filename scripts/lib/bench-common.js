'use strict';
/*
 * What the benchmark scripts share: command-line parsing with clear errors (exit 2), loading the
 * integration harness (installing its npm dependencies first when missing), and a scratch,
 * installed copy of the Node anchor.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const SUITE = path.join(ROOT, 'tests', 'integration');

// A stderr logger prefixed with the script's name.
const logger = (name) => (s) => process.stderr.write(`${name}: ${s}\n`);

/*
 * Parses `argv` against `flags`: {'--x': {key, path: true}} for a path (resolved; `exists` also
 * checks it is there), {'--l': {key, list: [words]}} for a comma-separated non-empty subset of
 * the words (kept as the array) or {'--n': {key, min, max}} for an integer in [min, max]. Every flag takes
 * one value. Unknown flags, missing or bad values, and -h/--help print `msg` (if any) and
 * `synopsis` and exit 2. Returns {...defaults, parsed values}.
 */
function parseArgs(name, synopsis, argv, defaults, flags) {
  const usage = (msg) => {
    if (msg) process.stderr.write(`${name}: ${msg}\n`);
    process.stderr.write(`usage: ${synopsis}\n`);
    process.exit(2);
  };
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') usage();
    const f = flags[a];
    if (!f) usage(`unknown argument ${a}`);
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    const v = argv[++i];
    if (f.path) {
      o[f.key] = path.resolve(v);
      if (f.exists && !fs.existsSync(o[f.key])) usage(`${a}: ${o[f.key]} does not exist`);
    } else if (f.list) {
      const words = v.split(',');
      if (!v || words.some((w) => !f.list.includes(w))) usage(`${a} takes words of ${f.list.join(',')}, comma-separated`);
      o[f.key] = words;
    } else {
      const n = Number(v);
      if (!Number.isInteger(n) || n < f.min || n > f.max) usage(`${a} must be an integer from ${f.min} to ${f.max}`);
      o[f.key] = n;
    }
  }
  o.usage = usage;
  return o;
}

// The integration harness, after installing the suite's socket.io-client the way
// run-integration.sh does when it is missing.
function loadHarness(log) {
  if (!fs.existsSync(path.join(SUITE, 'node_modules', 'socket.io-client'))) {
    log(`installing ${path.relative(ROOT, SUITE)} dependencies (npm ci)`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: SUITE, stdio: ['ignore', 2, 2], timeout: 300000 });
  }
  return require(path.join(SUITE, 'lib', 'harness.js'));
}

// Copies the anchor in `dir` (without node_modules and dot files) to a temp dir and installs it
// there (npm ci with a lock file, npm install without); returns the temp dir (the caller removes it).
function prepareAnchor(dir, log) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-bench-anchor-'));
  for (const f of fs.readdirSync(dir)) {
    if (f === 'node_modules' || f.startsWith('.')) continue;
    fs.cpSync(path.join(dir, f), path.join(tmp, f), { recursive: true });
  }
  const lock = fs.existsSync(path.join(tmp, 'package-lock.json'));
  log(`installing the anchor in ${tmp} (npm ${lock ? 'ci' : 'install'})`);
  execFileSync('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund'],
    { cwd: tmp, stdio: ['ignore', 2, 2], timeout: 300000 });
  return tmp;
}

const TICK = 100; // USER_HZ on Linux

// utime + stime of `pid` in seconds, from /proc; 0 when it is gone.
function cpuSeconds(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

// `pid` and all its descendants.
function processTree(pid) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]) || []));
  return out;
}

// INFO commandstats text -> { name: { calls, usec } }
function commandstats(text) {
  const out = {};
  for (const line of String(text).split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return out;
}

module.exports = { ROOT, logger, parseArgs, loadHarness, prepareAnchor, cpuSeconds, processTree, commandstats };
