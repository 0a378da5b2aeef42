// Drives headless Chromium through the DevTools protocol over a pipe (--remote-debugging-pipe:
// JSON messages separated by NUL on file descriptors 3 and 4), so no npm package is needed:
// loads the dashboard, waits for live progress and a model, moves a slider with the keyboard,
// checks that the prediction and its band change, that progress advances, that a phone-sized
// screen has no sideways scroll, and that the page threw nothing. Saves screenshots in OUTDIR.
// Usage: node drive.js URL OUTDIR   (CHROMIUM=/usr/bin/chromium by default). Exit 0 = all passed.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [url, outdir] = process.argv.slice(2);
if (!url || !outdir) {
  console.error('usage: node drive.js URL OUTDIR');
  process.exit(2);
}
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'specline-chromium-'));
const browser = spawn(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
  '--disable-dev-shm-usage', '--mute-audio', '--remote-debugging-pipe', '--user-data-dir=' + profile, 'about:blank'],
{ stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
browser.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });

let nextId = 1, buf = '';
const pending = new Map(), listeners = [];
browser.stdio[4].on('data', (chunk) => {
  buf += chunk.toString('utf8');
  let i;
  while ((i = buf.indexOf('\0')) >= 0) {
    const msg = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (msg.id && pending.has(msg.id)) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(p.method + ': ' + msg.error.message));
      else p.resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});

function send(method, params, sessionId) {
  const id = nextId++;
  const msg = { id, method, params: params || {} };
  if (sessionId) msg.sessionId = sessionId;
  browser.stdio[3].write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let session = null, failures = 0, checks = 0;
const errors = [];

function check(what, ok, detail) {
  checks++;
  if (ok) console.log('ok   ' + what);
  else { failures++; console.log('FAIL ' + what + (detail ? ': ' + detail : '')); }
}

async function evaluate(expr) {
  const r = await send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true }, session);
  if (r.exceptionDetails) throw new Error('evaluate: ' + r.exceptionDetails.text + ' in ' + expr);
  return r.result.value;
}

async function waitFor(what, expr, seconds) {
  const end = Date.now() + seconds * 1000;
  let v;
  while (Date.now() < end) {
    v = await evaluate(expr);
    if (v) { check(what, true); return v; }
    await sleep(250);
  }
  check(what, false, 'not within ' + seconds + ' s');
  return v;
}

async function screenshot(name, scale) {
  const params = { format: 'png', captureBeyondViewport: true };
  if (scale) { /* the whole page, scaled down: the one docs/dashboard.md shows */
    const size = await evaluate('[document.documentElement.scrollWidth, document.documentElement.scrollHeight]');
    params.clip = { x: 0, y: 0, width: size[0], height: size[1], scale };
  }
  const r = await send('Page.captureScreenshot', params, session);
  const file = path.join(outdir, name);
  fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
  console.log('     screenshot ' + file);
}

/* The part of the page the elements ids cover (from the top when fromTop), for the docs. */
async function shotOf(name, ids, fromTop) {
  const r = await evaluate(`(() => { let x0 = 1e9, y0 = 1e9, x1 = 0, y1 = 0;
    for (const id of ${JSON.stringify(ids)}) { const e = document.getElementById(id); if (!e) continue;
      const b = e.getBoundingClientRect(); x0 = Math.min(x0, b.left + scrollX); y0 = Math.min(y0, b.top + scrollY);
      x1 = Math.max(x1, b.right + scrollX); y1 = Math.max(y1, b.bottom + scrollY); }
    return [x0, y0, x1, y1]; })()`);
  const y0 = fromTop ? 0 : Math.max(0, r[1] - 8), x0 = Math.max(0, r[0] - 8);
  const clip = { x: x0, y: y0, width: r[2] + 8 - x0, height: r[3] + 8 - y0, scale: 1 };
  const shot = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip }, session);
  const file = path.join(outdir, name);
  fs.writeFileSync(file, Buffer.from(shot.data, 'base64'));
  console.log('     screenshot ' + file);
}

async function viewport(width, height, mobile) {
  await send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile }, session);
}

async function key(code, vk) {
  for (const type of ['rawKeyDown', 'keyUp'])
    await send('Input.dispatchKeyEvent', { type, key: code, code, windowsVirtualKeyCode: vk }, session);
}

// The predicted mean and std of output 0 of a model, as the table shows them.
const cellOf = (kind) => `(() => { const td = document.getElementById('pred-${kind}-0');
  return td && td.dataset.mean ? { text: td.textContent, mean: +td.dataset.mean, std: +td.dataset.std } : null; })()`;
const done = '(() => { const c = window.dash.snap.counts; return c.complete + c.terminated + c.failed; })()';

async function main() {
  fs.mkdirSync(outdir, { recursive: true });
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  session = (await send('Target.attachToTarget', { targetId, flatten: true })).sessionId;
  listeners.push((m) => {
    if (m.sessionId !== session) return;
    if (m.method === 'Runtime.exceptionThrown') errors.push(m.params.exceptionDetails.exception
      ? m.params.exceptionDetails.exception.description : m.params.exceptionDetails.text);
    if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') errors.push(m.params.entry.text);
  });
  await send('Runtime.enable', {}, session);
  await send('Log.enable', {}, session);
  await send('Page.enable', {}, session);
  await viewport(1280, 900, false);
  await send('Page.navigate', { url }, session);
  await waitFor('the page loads its config', 'window.dash && window.dash.config !== null', 20);
  await waitFor('snapshots arrive over server-sent events', 'window.dash.snap !== null && window.dash.events >= 2', 20);
  await waitFor('runs are stored', done + ' > 0', 60);
  const model = await waitFor('a surrogate model is loaded and predicts',
    `window.dash.pred && window.dash.pred.models.some(m => m.kind === 'surrogate' && m.mean) && ${cellOf('surrogate')}`, 90);
  const before = await evaluate(cellOf('surrogate'));
  const band0 = await evaluate('JSON.stringify(window.dash.plots.out0.data[2])');
  const preds = await evaluate('window.dash.predictions');
  const n0 = await evaluate(done);
  // move the omega slider (input 3: the resonance) with the keyboard, as an operator would
  await evaluate("document.getElementById('in-3').focus(), true");
  for (let i = 0; i < 12; i++) await key('ArrowLeft', 37);
  await waitFor('the slider moved', "Number(document.getElementById('in-3').value) < 1.2 - 0.1", 5);
  await waitFor('a new prediction came back', 'window.dash.predictions > ' + preds, 10);
  await sleep(300);
  const after = await evaluate(cellOf('surrogate'));
  check('the plots now run along omega', (await evaluate("document.getElementById('axis').value")) === '3');
  check('the predicted mean changed', model && before && after && after.mean !== before.mean,
    JSON.stringify({ before, after }));
  check('the ±2σ band changed', after && before && after.std !== before.std &&
    (await evaluate('JSON.stringify(window.dash.plots.out0.data[2])')) !== band0, JSON.stringify({ before, after }));
  check('the table shows mean ± 2σ', after && /±/.test(after.text), after && after.text);
  check('the nearest simulated points are listed', (await evaluate('window.dash.pred.nearest.sim.length')) > 0);
  const elevated = await waitFor('the elevated model answers beside the simulation-only one',
    `window.dash.pred && window.dash.pred.models.some(m => m.kind === 'elevated' && m.mean) && ${cellOf('elevated')} !== null`, 90);
  check('the nearest experimental points are listed', (await evaluate('window.dash.pred.nearest.exp.length')) > 0);
  await waitFor('the suggested next shots are listed with their reason',
    "document.querySelectorAll('#suggest tbody tr').length === 5 && /uncertainty/.test(document.querySelector('#suggest tbody tr').textContent)", 15);
  check('the suggested shots panel says what to run', /specline shot suggest/.test(await evaluate("document.getElementById('shots').textContent")));
  await evaluate("document.getElementById('operator').scrollIntoView(), true");
  await screenshot('operator.png');
  await waitFor('progress advances while the page is open', done + ' > ' + n0, 90);
  await waitFor('the running count is shown', "document.getElementById('n-running').textContent !== '–'", 10);
  await evaluate('window.scrollTo(0, 0), true');
  await screenshot('campaign.png');
  // predicted vs actual: the surrogate's finals at the newest complete runs, with coverage
  await waitFor('the predicted-vs-actual panel has points',
    "window.dash.pva && window.dash.pva.models.some(m => m.kind === 'surrogate' && m.ids.length > 0) && " +
    "window.dash.plots['pva-surrogate-0'] && window.dash.plots['pva-surrogate-0'].data[0].length > 0", 30);
  check('  and shows the ±2σ coverage', /^[0-9.]+$|^–$/.test(await evaluate(
    "(document.getElementById('pva-cov-surrogate-0') || {}).textContent || ''")) &&
    (await evaluate("window.dash.pva.models[0].outputs[0].coverage")) !== null);
  // the per-run view of a stopped run: its observed prefix and the tail it was stopped on
  const stopped = await waitFor('a speculatively stopped run is listed',
    "(window.dash.snap.runs.find(r => r.status === 'terminated' && !r.audit) || {}).id", 120);
  if (stopped) {
    await evaluate(`(() => { const s = document.getElementById('run-select'); s.value = ${JSON.stringify(stopped)};
      s.dispatchEvent(new Event('change')); return true; })()`);
    await waitFor('the run view shows the predicted tail the run was stopped on',
      `window.dash.run && window.dash.run.run.sample_id === ${JSON.stringify(stopped)} && window.dash.runTail > 0 && window.dash.plots.run.data[2].some(v => v !== null)`, 15);
    check('  beside its observed prefix', await evaluate('window.dash.plots.run.data[1].some(v => v !== null)'));
    check('  and the summary says where it stopped', /stopped at step/.test(await evaluate("document.getElementById('run-summary').textContent")));
    await evaluate("document.getElementById('run-card').scrollIntoView(), true");
    await shotOf('doc-run.png', ['run-card']);
    await shotOf('doc-pva.png', ['pva-card']);
    await evaluate('window.scrollTo(0, 0), true');
  }
  // for docs/dashboard.md: the campaign and the operator's view, later in the campaign
  await shotOf('doc-campaign.png', ['progress-card', 'steps-card', 'model-card'], true);
  await shotOf('doc-operator.png', ['operator', 'shots-card']);
  await screenshot('dashboard-small.png', 0.55);
  await viewport(390, 844, true);
  await sleep(800);
  check('a phone-sized screen needs no sideways scrolling',
    (await evaluate('document.documentElement.scrollWidth')) <= 392,
    'scrollWidth ' + (await evaluate('document.documentElement.scrollWidth')));
  await screenshot('phone.png');
  check('the page threw no error', errors.length === 0, errors.join(' | '));
  void elevated;
}

const timer = setTimeout(() => { console.log('FAIL the browser run timed out'); finish(1); },
  (600 + Number(process.env.HOLD_S || 0)) * 1000);
let exitCode = null;
function finish(code) {
  clearTimeout(timer);
  exitCode = code;
  if (browser.exitCode !== null || browser.signalCode !== null) cleanup();
  else browser.kill('SIGKILL'); /* the profile goes once it is gone: see 'exit' */
}
function cleanup() {
  try { fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 }); } catch (e) { /* a tmp dir left */ }
  process.exit(exitCode);
}
browser.on('exit', (code) => {
  if (exitCode !== null) cleanup();
  else if (session === null) { console.log('FAIL chromium exited (' + code + '): ' + stderr); finish(1); }
});
/* HOLD_S=N keeps the page open N more seconds, nudging a slider every 2 s (memory runs:
 * bench/dashboard/memory_hour.sh), whatever the checks before found */
async function hold() {
  for (let t = 0, n = Number(process.env.HOLD_S || 0); t < n; t += 2) {
    await key(t % 8 < 4 ? 'ArrowRight' : 'ArrowLeft', t % 8 < 4 ? 39 : 37);
    await sleep(2000);
  }
}

main().catch((e) => { console.log('FAIL ' + e.message); failures++; }).then(hold).then(() => {
  console.log(`${checks - failures} passed, ${failures} failed`);
  finish(failures ? 1 : 0);
}, (e) => {
  console.log('FAIL ' + e.message);
  finish(1);
});
