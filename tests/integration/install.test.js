'use strict';
// `make install PREFIX=/usr DESTDIR=<staging>` as a package build runs it: exactly the binary, the
// CLI, the unit, the sample env file and the README land under DESTDIR, with paths in the unit
// that name the final locations (never DESTDIR); `make uninstall` with the same variables removes
// every one of them. The environment file is root's, 0600: the unit's privileged steps hand
// the service user a private copy, which streamio reads at start and on every reload.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const root = path.resolve(__dirname, '../..');

function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function make(target, vars) {
  const r = spawnSync('make', ['-s', '-C', root, target, ...vars], { encoding: 'utf8', timeout: 100000 });
  assert.equal(r.status, 0, `make ${target}: ${r.stderr}`);
}

describe('make install with DESTDIR', { timeout: 120000, skip: h.ANCHOR_SKIP }, () => {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-destdir-'));
  const vars = ['PREFIX=/usr', `DESTDIR=${dest}`];
  if (/\/asan\//.test(process.env.STREAMIO_BIN || '')) vars.push('ASAN=1');

  after(() => fs.rmSync(dest, { recursive: true, force: true }));

  it('stages exactly the five files, with the final paths inside the unit', () => {
    make('install', vars);
    assert.deepEqual(filesUnder(dest), [
      'etc/streamio/streamio.env.sample',
      'lib/systemd/system/streamio.service',
      'usr/bin/streamio',
      'usr/bin/streamioctl',
      'usr/share/doc/streamio/README.md',
    ]);
    for (const f of ['usr/bin/streamio', 'usr/bin/streamioctl']) {
      assert.equal(fs.statSync(path.join(dest, f)).mode & 0o777, 0o755, f);
    }
    assert.equal(fs.statSync(path.join(dest, 'lib/systemd/system/streamio.service')).mode & 0o777, 0o644);
    // secrets live in the environment file: never readable by other users, even as a sample
    assert.equal(fs.statSync(path.join(dest, 'etc/streamio/streamio.env.sample')).mode & 0o777, 0o600);
    const unit = fs.readFileSync(path.join(dest, 'lib/systemd/system/streamio.service'), 'utf8');
    assert.ok(!unit.includes(dest), 'DESTDIR never appears in the unit');
    assert.match(unit, /^ExecStart=\/usr\/bin\/streamio$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/streamio\/streamio.env$/m);
    assert.match(unit, /^Environment=STREAMIO_ENV_FILE=\/run\/streamio\/streamio.env$/m);
    assert.match(unit, /^Documentation=file:\/\/\/usr\/share\/doc\/streamio\/README.md$/m);
    assert.equal(fs.readFileSync(path.join(dest, 'etc/streamio/streamio.env.sample'), 'utf8'),
      fs.readFileSync(path.join(root, 'systemd/streamio.env.sample'), 'utf8'));
    // the staged CLI runs and says clearly that no server answers
    const r = spawnSync(path.join(dest, 'usr/bin/streamioctl'),
      ['--socket', path.join(dest, 'none.sock'), 'status'], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /none\.sock/);
  });

  it('make uninstall with the same variables removes every file', () => {
    make('uninstall', vars);
    assert.deepEqual(filesUnder(dest), []);
  });
});

// The unit's own commands, run as systemd would but on temporary directories: its privileged
// (+) steps, then streamio as an unprivileged user (uid nobody stands in for the dynamic user).
describe('the unit keeps the secrets in the environment file from other users', { timeout: 60000, skip: h.ANCHOR_SKIP }, () => {
  const NOBODY = 65534;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-secrets-'));
  const etc = path.join(base, 'etc');
  const run = path.join(base, 'run');
  const src = path.join(etc, 'streamio.env');
  const copy = path.join(run, 'streamio.env');
  let redis;
  let srv;

  const logs = h.stopAfter(() => ({ srv, redis }));
  after(() => fs.rmSync(base, { recursive: true, force: true }));

  // The unit's `key=` lines, with systemd's own escapes undone and the paths moved to `base`.
  function unitCommands(key) {
    const unit = fs.readFileSync(path.join(root, 'systemd/streamio.service'), 'utf8');
    return unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1)
      .replace(/\$\$/g, '$').replace(/%%/g, '%')
      .replaceAll('/etc/streamio/', `${etc}/`).replaceAll('/run/streamio', run));
  }

  function runUnitCommand(cmd, env = {}) {
    const privileged = cmd.startsWith('+');
    const r = spawnSync('sh', ['-c', privileged ? cmd.slice(1) : cmd], {
      encoding: 'utf8', timeout: 10000, env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  }

  const secret = (n) => `secret-${n}-0123456789abcdef-0123456789`;
  function token(key) {
    const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ rooms: ['*'], exp: Math.floor(Date.now() / 1000) + 600 })}`;
    return `${body}.${require('node:crypto').createHmac('sha256', key).update(body).digest('base64url')}`;
  }

  it('copies a root 0600 file privately to the service user, who reads it at start and on reload', logs(async () => {
    fs.chmodSync(base, 0o755);
    fs.mkdirSync(etc, { mode: 0o755 });
    fs.mkdirSync(run, { mode: 0o755 });
    fs.chownSync(run, NOBODY, NOBODY); // RuntimeDirectory=, owned by the service's user
    fs.writeFileSync(src, `AUTH_JWT_SECRET=${secret(1)}\n`, { mode: 0o600 });
    const [startPre] = unitCommands('ExecStartPre');
    assert.ok(startPre && startPre.startsWith('+'), 'a privileged ExecStartPre');
    runUnitCommand(startPre);
    const st = fs.statSync(copy);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, NOBODY);
    assert.equal(fs.statSync(src).mode & 0o777, 0o600);
    const peek = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', src], { encoding: 'utf8' });
    assert.notEqual(peek.status, 0, 'the service user cannot read the root file itself');
    assert.match(peek.stderr, /Permission denied/);

    redis = await h.startRedis();
    const port = await h.freePort();
    srv = await h.startServer({
      cmd: 'setpriv',
      args: ['--reuid=65534', '--regid=65534', '--clear-groups', process.env.STREAMIO_BIN],
      env: { ...h.baseEnv(), REDIS_HOST: h.HOST, REDIS_PORT: String(redis.port), HOST: h.HOST, PORT: String(port), CLUSTER_WORKERS: '1', STREAMIO_ENV_FILE: copy },
      port,
      name: 'streamio (nobody)',
    });
    // the secret came from the copy: no token, no connection; a token signed with it connects
    await assert.rejects(h.connectClient(srv.url), /Authentication|token/i);
    h.closeClient(await h.connectClient(srv.url, { auth: { token: token(secret(1)) } }));

    fs.writeFileSync(src, `AUTH_JWT_SECRET=${secret(2)}\n`);
    const reload = unitCommands('ExecReload');
    assert.equal(reload.length, 2, 'copy, then SIGHUP');
    for (const cmd of reload) runUnitCommand(cmd.replace('$MAINPID', String(srv.pid)));
    await h.waitUntil(async () => {
      const s = await h.connectClient(srv.url, { auth: { token: token(secret(2)) }, timeout: 1000 }).catch(() => null);
      if (s) h.closeClient(s);
      return s !== null;
    }, { timeout: 15000, message: 'the reloaded secret to apply' });
    assert.equal(fs.statSync(copy).uid, NOBODY);
  }));
});
