'use strict';
/*
 * Headless Chromium driven over the DevTools protocol: open a page, evaluate expressions in it
 * (to assert on its DOM) and take screenshots. Chromium runs with a fresh profile, no network of
 * its own (no component updates, sync, QUIC) and is stopped by PID; the DevTools endpoint is on
 * 127.0.0.1 on a port Chromium picks.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const h = require('./harness');

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/* Starts Chromium on `url`; resolves {evaluate(expr), screenshot(file), close()}. */
async function openPage(url, { width = 1100, height = 800 } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'streamio-chromium-'));
  const chrome = h.spawnTracked(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
    '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
    `--window-size=${width},${height}`, url], { name: 'chromium' });
  const close = async () => {
    if (ws) ws.terminate();
    await h.stop(chrome);
    fs.rmSync(profile, { recursive: true, force: true });
  };
  let ws;
  try {
    // Chromium writes the port it picked into the profile once DevTools listens
    const port = await h.waitUntil(() => {
      if (!chrome.running) throw Object.assign(new Error(`chromium exited\n${chrome.describe()}`), { fatal: true });
      const f = path.join(profile, 'DevToolsActivePort');
      return fs.existsSync(f) && Number(fs.readFileSync(f, 'utf8').split('\n')[0]);
    }, { timeout: 30000, message: 'chromium DevTools port' });
    const target = await h.waitUntil(async () => {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      return list.find((t) => t.type === 'page' && t.url.startsWith(url.split('#')[0]));
    }, { timeout: 15000, message: 'the page target' });
    ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
    await h.withDeadline(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), 10000, 'DevTools WebSocket');
  } catch (err) {
    await close();
    throw err;
  }
  let seq = 0;
  const pending = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${m.error.message} (${p.method})`));
    else p.resolve(m.result);
  });
  const send = (method, params = {}) => h.withDeadline(new Promise((resolve, reject) => {
    seq += 1;
    pending.set(seq, { resolve, reject, method });
    ws.send(JSON.stringify({ id: seq, method, params }));
  }), 15000, method);
  return {
    chrome,
    // The value of a JavaScript expression in the page (JSON-serialisable).
    async evaluate(expression) {
      const r = await send('Runtime.evaluate', { expression, returnByValue: true });
      if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text}`);
      return r.result.value;
    },
    // Writes a PNG of the viewport to `file`; returns its size in bytes.
    async screenshot(file) {
      const r = await send('Page.captureScreenshot', { format: 'png' });
      const png = Buffer.from(r.data, 'base64');
      fs.writeFileSync(file, png);
      return png;
    },
    close,
  };
}

module.exports = { CHROMIUM, openPage };
