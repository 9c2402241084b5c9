'use strict';
/*
 * What the tests of the back-end features (client events, presence, per-user limits, dead
 * letters) share: a back end written with Debian's python3-redis (clients/py_redis.py), GET
 * /metrics and one series of it, GET with headers, streamioctl, and HS256 tokens signed with
 * node:crypto as any back end would.
 */
const assert = require('node:assert/strict');
const { execFile, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const PYTHON = '/usr/bin/python3';
const PY = path.join(__dirname, '../clients/py_redis.py');
const pyRedisOk = fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import redis'], { timeout: 10000 }).status === 0;

function run(cmd, args, timeout = 20000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// py_redis.py against `addr` (a port, or "cluster:host:port"); its JSON output.
async function py(addr, ...args) {
  const r = await run(PYTHON, [PY, String(addr), ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// streamioctl on the control socket `sock`: {code, stdout, stderr}.
function ctl(sock, ...args) {
  const bin = path.join(path.dirname(process.env.STREAMIO_BIN || ''), 'streamioctl');
  return run(bin, ['--socket', sock, ...args]);
}

// GET url with headers: {status, headers, body (parsed JSON or the text)}.
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, timeout: 5000, headers }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { raw += d; });
      res.on('end', () => {
        let body = raw;
        try {
          body = JSON.parse(raw);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    }).on('error', reject);
  });
}

async function metrics(url) {
  return (await get(`${url}/metrics`)).body;
}

// The value of one series (exact name and labels as rendered), or null.
function series(text, name) {
  const esc = name.replace(/[{}"=.\\]/g, (c) => `\\${c}`);
  const m = text.match(new RegExp(`^${esc} (\\d+(?:\\.\\d+)?)$`, 'm'));
  return m ? Number(m[1]) : null;
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function sign(claims, secret) {
  const body = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(crypto.createHmac('sha256', secret).update(body).digest())}`;
}

module.exports = { PYTHON, pyRedisOk, run, py, ctl, get, metrics, series, sign };
