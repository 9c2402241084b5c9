'use strict';
// `make install PREFIX=/usr DESTDIR=<staging>` as a package build runs it: exactly the binary, the
// CLI, their man pages, the unit, the sample env file and the README land under DESTDIR, with paths in the unit
// that name the final locations (never DESTDIR); `make uninstall` with the same variables removes
// every one of them. No server is started.
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

  it('stages exactly the seven files, with the final paths inside the unit', () => {
    make('install', vars);
    assert.deepEqual(filesUnder(dest), [
      'etc/streamio/streamio.env.sample',
      'lib/systemd/system/streamio.service',
      'usr/bin/streamio',
      'usr/bin/streamioctl',
      'usr/share/doc/streamio/README.md',
      'usr/share/man/man8/streamio.8',
      'usr/share/man/man8/streamioctl.8',
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
    // reloads read a copy the root side makes of the root-only file (see the unit)
    assert.match(unit, /^Environment=STREAMIO_ENV_FILE=\/run\/streamio\/streamio.env$/m);
    assert.match(unit, /^ExecStartPre=\+\/bin\/sh -c 'umask 077; cat \/etc\/streamio\/streamio.env >/m);
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
