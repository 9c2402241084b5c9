'use strict';
/*
 * Runs a test file inside a network namespace of its own, so the faults it injects (iptables
 * DROP rules on the Redis port) and the names it lists (/proc/net/unix) concern nobody else on
 * the machine. The file calls `if (netns.enter(__filename)) return;` first: outside a namespace
 * that re-runs the file under `unshare -n` (as root; the namespace's loopback brought up, nothing
 * else exists there: every address is 127.0.0.0/8) and reports each of its tests as a subtest;
 * inside, it returns false and the file runs as usual with the ordinary harness.
 *
 * Firewall helpers refuse to run unless this process is in a namespace other than the
 * machine's (compared with pid 1's), so a rule can never reach the host.
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { it } = require('node:test');

const MARK = 'STREAMIO_NETNS';

function netnsOf(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

function isolated() {
  const mine = netnsOf('self');
  return process.env[MARK] === '1' && mine !== null && mine !== netnsOf(1);
}

function have(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Parses the inner run's TAP: [{name, ok, skip, detail}] for its tests (a suite's tests, and tests
// outside any suite; the suites themselves are left out).
function results(tap) {
  const out = [];
  const lines = tap.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^( {4})?(not ok|ok) \d+ - (.*?)( # SKIP.*)?$/.exec(lines[i]);
    if (!m) continue;
    const pad = m[1] ? 6 : 2;
    let j = i + 1;
    const detail = [];
    while (j < lines.length && lines[j].startsWith(' '.repeat(pad))) detail.push(lines[j++]);
    if (!m[1] && detail.some((l) => /type: 'suite'/.test(l))) continue;
    out.push({ name: m[3], ok: m[2] === 'ok', skip: Boolean(m[4]), detail: detail.join('\n') });
  }
  return out;
}

/*
 * Outside: registers one test that runs `file` in a new network namespace and mirrors its tests;
 * returns true (the caller stops). Inside: returns false.
 */
function enter(file, { timeout = 300000 } = {}) {
  if (isolated()) return false;
  const skip = process.getuid() !== 0 ? 'needs root for unshare -n'
    : !have('unshare') || !have('ip') ? 'needs unshare and ip' : false;
  it(`runs in its own network namespace: ${require('node:path').basename(file)}`, { skip, timeout }, async (t) => {
    const env = { ...process.env, [MARK]: '1' };
    delete env.NODE_TEST_CONTEXT; // the inner run is a test run of its own, not a nested one
    const child = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$0" --test-reporter=tap "$1"',
      process.execPath, file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tap = '';
    child.stdout.on('data', (d) => { tap += d; });
    child.stderr.on('data', (d) => process.stderr.write(d));
    const code = await new Promise((resolve) => child.once('close', resolve));
    const rs = results(tap);
    for (const r of rs) {
      await t.test(r.name, { skip: r.skip }, () => {
        if (!r.ok) throw new Error(`failed inside the namespace:\n${r.detail}`);
      });
    }
    if (code !== 0 && rs.every((r) => r.ok)) throw new Error(`inner run exited ${code}:\n${tap.slice(-8000)}`);
    if (rs.length === 0) throw new Error(`no test ran inside the namespace:\n${tap.slice(-8000)}`);
  });
  return true;
}

function iptables(args) {
  if (!isolated()) throw new Error('iptables only inside a test network namespace');
  execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

// Drops, silently (no RST), TCP between 127.0.0.1 and the local `port` in both directions; other
// loopback addresses (a producer bound to 127.0.0.2) still get through.
function cut(port) {
  iptables(['-I', 'INPUT', '-p', 'tcp', '-s', '127.0.0.1', '-d', '127.0.0.1', '--dport', String(port), '-j', 'DROP']);
  iptables(['-I', 'INPUT', '-p', 'tcp', '-s', '127.0.0.1', '-d', '127.0.0.1', '--sport', String(port), '-j', 'DROP']);
}

function heal(port) {
  iptables(['-D', 'INPUT', '-p', 'tcp', '-s', '127.0.0.1', '-d', '127.0.0.1', '--dport', String(port), '-j', 'DROP']);
  iptables(['-D', 'INPUT', '-p', 'tcp', '-s', '127.0.0.1', '-d', '127.0.0.1', '--sport', String(port), '-j', 'DROP']);
}

module.exports = { enter, isolated, cut, heal };
