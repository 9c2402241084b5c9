'use strict';
// `make deb`: the Debian package built with debhelper, lintian clean, with the right files and
// modes; then installed with dpkg into a fresh root (tests/integration/lib/deb-root.sh: no
// systemd runs there), its unit verified by systemd-analyze, and the installed binary started as
// the unit would (system user, root-only env file, runtime directory), answering /health with
// its version, reloading a changed streamio.env and stopping with 0. Needs root (mounts in a
// private namespace); skipped under the ASan pass, which would only rebuild the same package.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const root = path.resolve(__dirname, '../..');
const bin = process.env.STREAMIO_BIN || '';
const tools = ['dpkg-buildpackage', 'lintian', 'unshare', 'systemd-analyze'].filter((t) =>
  spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const skip = h.ANCHOR_SKIP || (/\/asan\//.test(bin) && 'the package is built once, by the release pass') ||
  (process.getuid() !== 0 && 'needs root') || (tools.length > 0 && `missing ${tools.join(', ')}`);

describe('make deb', { timeout: 900000, skip }, () => {
  let version;
  let deb;

  before(() => {
    version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ')[1];
    deb = path.join(root, 'build', `streamio_${version}_amd64.deb`);
  });

  it('builds build/streamio_<version>_amd64.deb with debhelper, and lintian passes', () => {
    fs.rmSync(deb, { force: true });
    const r = spawnSync('make', ['-s', '-C', root, 'deb'], { encoding: 'utf8', timeout: 800000 });
    assert.equal(r.status, 0, `${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    assert.match(r.stdout, /deb: lintian clean/);
    assert.ok(fs.existsSync(deb), deb);
    const field = (f) => spawnSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).stdout.trim();
    assert.equal(field('Package'), 'streamio');
    assert.equal(field('Version'), version);
    assert.match(field('Depends'), /libuv1/);
    assert.match(field('Depends'), /liburing2/); // dpkg-shlibdeps: the batched sends
    assert.match(field('Depends'), /systemd-sysusers/);
  });

  it('holds the binaries, unit, root-only conffile, sysusers entry, man pages and docs', () => {
    const list = spawnSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' }).stdout;
    const entry = (p) => list.split('\n').find((l) => l.endsWith(` ./${p}`));
    const expect = {
      'usr/bin/streamio': /^-rwxr-xr-x root\/root/,
      'usr/bin/streamioctl': /^-rwxr-xr-x root\/root/,
      'lib/systemd/system/streamio.service': /^-rw-r--r-- root\/root/,
      'etc/streamio/streamio.env': /^-rw------- root\/root/,
      'usr/lib/sysusers.d/streamio.conf': /^-rw-r--r--/,
      'usr/share/man/man8/streamio.8.gz': /^-rw-r--r--/,
      'usr/share/man/man8/streamioctl.8.gz': /^-rw-r--r--/,
      'usr/share/doc/streamio/README.md.gz': /^-rw-r--r--/,
      'usr/share/doc/streamio/copyright': /^-rw-r--r--/,
      'usr/share/doc/streamio/changelog.gz': /^-rw-r--r--/,
    };
    for (const [p, re] of Object.entries(expect)) {
      assert.ok(entry(p), `${p} in the package\n${list}`);
      assert.match(entry(p), re, p);
    }
    const ctl = spawnSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }).stdout;
    assert.equal(ctl, '/etc/streamio/streamio.env\n');
    const unit = spawnSync('sh', ['-c', `dpkg-deb --fsys-tarfile ${deb} | tar -xOf - ./lib/systemd/system/streamio.service`],
      { encoding: 'utf8' }).stdout;
    assert.match(unit, /^ExecStart=\/usr\/bin\/streamio$/m);
    assert.match(unit, /^User=streamio$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/streamio\/streamio.env$/m);
    assert.doesNotMatch(unit, /STREAMIO_DEBUG_PAGE/, 'the unit never turns the debug page on');
  });

  describe('installed into a fresh root', () => {
    let redis;
    let run;
    let port;
    const said = (what) => {
      const m = new RegExp(`^deb-root: ${what} (.*)$`, 'm').exec(run.stdout());
      return m && m[1];
    };

    before(async () => {
      redis = await h.startRedis();
      port = await h.freePort();
      run = h.spawnTracked('unshare', ['-m', '--propagation', 'private',
        path.join(__dirname, 'lib/deb-root.sh'), deb, String(redis.port), String(port)], { name: 'deb-root' });
      await h.waitUntil(() => {
        if (!run.running) throw Object.assign(new Error(run.describe()), { fatal: true });
        return said('started');
      }, { timeout: 120000, message: 'the package installed and started' });
    });

    after(async () => {
      if (run) await h.stop(run, 20000);
      if (redis) await redis.stop();
    });

    const logs = (fn) => h.withLogs(() => run, fn);

    it('dpkg ran the maintainer scripts: system user, unit enabled, root-only env file', logs(async () => {
      assert.equal(said('installed'), version);
      assert.match(said('user'), /^streamio:x:(\d+):(\d+):streamio server:\/nonexistent:\/usr\/sbin\/nologin$/);
      assert.equal(said('envfile'), '600 root:root');
      assert.equal(said('enabled'), '/lib/systemd/system/streamio.service');
      assert.equal(said('version'), `streamio ${version}`);
    }));

    it('systemd-analyze verify accepts the unit', logs(async () => {
      assert.equal(said('verify'), 'ok');
    }));

    it('runs as the streamio user, with the secrets file out of its reach, and answers /health', logs(async () => {
      const uid = said('user').split(':')[2];
      assert.equal(said('secrets'), 'root-only');
      assert.equal(said('copy'), `600 ${uid}`, 'its private copy for reloads');
      const r = await h.waitUntil(async () => {
        const x = await h.getHealth(`http://127.0.0.1:${port}`).catch(() => null);
        return x && x.status === 200 && x.body.redisConnected && x;
      }, { timeout: 20000, message: '/health of the installed server' });
      assert.equal(r.body.version, version);
      assert.equal(r.body.workersAlive, 1);
      const status = fs.readFileSync(`/proc/${r.body.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s`, 'm'));
    }));

    it('systemctl reload (ExecReload) applies an edited streamio.env, then stops with 0', logs(async () => {
      process.kill(run.pid, 'SIGHUP');
      await h.waitUntil(async () => {
        const x = await h.getHealth(`http://127.0.0.1:${port}`).catch(() => null);
        return x && x.status === 200 && x.body.workersAlive === 2 && x.body.workers.length === 2;
      }, { timeout: 20000, message: 'the reload to 2 workers' });
      process.kill(run.pid, 'SIGTERM');
      const exit = await h.waitExit(run, 20000);
      assert.deepEqual(exit, { code: 0, signal: null }, run.describe());
      assert.equal(said('stopped'), '0');
      run = null;
    }));
  });
});
