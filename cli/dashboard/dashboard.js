/* The page of `specline dashboard`: reads /api/config once, follows /events (server-sent
 * snapshots of the campaign) and asks /api/predict as the operator moves the sliders. Plots
 * with uPlot. Text from the server only ever goes into textContent. window.dash holds the
 * state (the browser test reads it). */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const KINDS = ['surrogate', 'elevated'];
  const COLORS = { surrogate: '#1f6fc5', elevated: '#d9731a', sim: '#4b5563', exp: '#c0262d' };
  const BANDS = { surrogate: 'rgba(31,111,197,0.15)', elevated: 'rgba(217,115,26,0.15)' };
  const state = { config: null, snap: null, pred: null, x: [], axis: 0, plots: {}, seq: 0,
                  loadedKey: '', events: 0, predictions: 0 };
  window.dash = state;

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error(url.split('?')[0] + ': HTTP ' + r.status);
    return r.json();
  }

  /* ---- plots ---- */

  function plotWidth(box) { return Math.max(220, box.clientWidth - 4); }

  /* Creates or refreshes the plot `key` in box; a plot whose series changed is rebuilt. */
  function plot(key, box, sig, optsFn, data) {
    let p = state.plots[key];
    if (p && p.sig === sig) {
      p.setData(data);
      return p;
    }
    if (p) p.destroy();
    box.textContent = '';
    const opts = optsFn();
    opts.axes = opts.axes || [{}, {}];
    opts.axes[1] = Object.assign({ size: 56 }, opts.axes[1]);
    opts.legend = Object.assign({ live: false }, opts.legend);
    opts.width = plotWidth(box);
    opts.height = opts.height || 190;
    p = new uPlot(opts, data, box);
    p.sig = sig;
    p.box = box;
    state.plots[key] = p;
    return p;
  }

  new ResizeObserver(() => {
    for (const k in state.plots) {
      const p = state.plots[k];
      if (p.box.isConnected) p.setSize({ width: plotWidth(p.box), height: p.height });
    }
  }).observe(document.body);

  function line(label, color, extra) {
    return Object.assign({ label: label, stroke: color, width: 2, spanGaps: true }, extra || {});
  }

  function dots(label, color) {
    return { label: label, stroke: color, fill: color, width: 0, paths: () => null,
             points: { show: true, size: 8, stroke: color, fill: color } };
  }

  /* ---- the snapshot ---- */

  function renderCounts(s) {
    const c = s.counts;
    $('n-complete').textContent = c.complete;
    $('n-terminated').textContent = c.terminated;
    $('n-failed').textContent = c.failed;
    $('n-running').textContent = c.running === null ? '–' : c.running;
    $('n-queued').textContent = c.queued === null ? '–' : c.queued;
    $('n-exp').textContent = c.experimental;
    const st = s.steps;
    $('steps-saving').textContent = st.full > 0
      ? st.used + ' of ' + st.full + ' steps, ' + fmt(100 * (1 - st.used / st.full)) + '% saved' : '';
  }

  function renderProgress(s) {
    const t = s.timeline;
    plot('progress', $('plot-progress'), 'p', () => ({
      title: 'runs stored',
      series: [{}, line('complete', '#1e7a35'), line('stopped', COLORS.surrogate), line('failed', COLORS.exp)],
      scales: { x: { time: true } },
    }), [t.t, t.complete, t.terminated, t.failed]);
    const l = s.live;
    plot('live', $('plot-live'), 'l', () => ({
      title: 'running and queued (sim queue)', height: 150,
      series: [{}, line('running', '#7b3fb8'), line('queued', COLORS.sim)],
      scales: { x: { time: true } },
    }), [l.t, l.running, l.queued]);
    plot('steps', $('plot-steps'), 's', () => ({
      series: [{}, line('steps used', COLORS.surrogate), line('the same runs complete', COLORS.sim, { dash: [6, 4] })],
      scales: { x: { time: true } },
    }), [t.t, t.steps, t.full]);
  }

  function renderQueues(s) {
    const tb = $('queues').tBodies[0];
    tb.textContent = '';
    for (const q of s.queues || []) {
      const tr = document.createElement('tr');
      cell(tr, q.name + (q.missing ? ' (missing)' : ''));
      cell(tr, q.ready === null ? '–' : q.ready);
      cell(tr, q.unacked === null ? '–' : q.unacked);
      cell(tr, q.consumers === null ? '–' : q.consumers);
      cell(tr, fmt(q.publish_rate));
      cell(tr, fmt(q.deliver_rate));
      tb.appendChild(tr);
    }
  }

  function renderModels(s) {
    const ms = s.models.slice().sort((a, b) => a.steps - b.steps || a.at - b.at);
    const x = [], sn = [], sc = [], en = [];
    for (const m of ms) {
      x.push(m.steps);
      const sur = m.kind === 'surrogate';
      sn.push(sur ? m.nrmse : null);
      sc.push(sur ? m.coverage : null);
      en.push(m.kind === 'elevated' ? m.nrmse : null);
    }
    plot('model', $('plot-model'), 'm', () => ({
      series: [{ label: 'steps' }, line('NRMSE', COLORS.surrogate, { points: { show: true } }),
               line('coverage ±2σ', '#1e7a35', { scale: 'cov', points: { show: true } }),
               Object.assign(dots('elevated NRMSE', COLORS.elevated))],
      scales: { x: { time: false }, cov: { range: [0, 1] } },
      axes: [{}, {}, { scale: 'cov', side: 1, grid: { show: false } }],
    }), [x, sn, sc, en]);
    const l = s.loaded;
    $('model-ids').textContent = l.surrogate ? 'newest: ' + l.surrogate + (l.elevated ? ', elevated ' + l.elevated : '') : 'none yet';
  }

  function renderWarnings(s) {
    const ul = $('warnings');
    ul.textContent = '';
    for (const w of s.warnings) {
      const li = document.createElement('li');
      li.textContent = w;
      ul.appendChild(li);
    }
  }

  function onSnapshot(s) {
    state.snap = s;
    state.events++;
    $('campaign').textContent = s.campaign;
    $('updated').textContent = 'updated ' + new Date(s.at * 1000).toLocaleTimeString();
    renderCounts(s);
    renderProgress(s);
    renderQueues(s);
    renderModels(s);
    renderWarnings(s);
    renderRunList(s);
    renderSuggest(s);
    maybePva(s);
    const key = (s.loaded.surrogate || '') + '|' + (s.loaded.elevated || '');
    if (key !== state.loadedKey) { /* a new model: ask again */
      state.loadedKey = key;
      schedulePredict(0);
    }
  }

  /* ---- predicted vs actual ---- */

  /* One model and output: predicted mean against measured, ±2σ bars, the diagonal. */
  function pvaPlot(key, box, m, o) {
    const idx = o.actual.map((_, i) => i).filter((i) => o.actual[i] !== null && o.mean[i] !== null);
    idx.sort((a, b) => o.actual[a] - o.actual[b]);
    const xs = idx.map((i) => o.actual[i]);
    const held = idx.map((i) => (m.held_out[i] ? o.mean[i] : null));
    const seen = idx.map((i) => (m.held_out[i] ? null : o.mean[i]));
    const lo = idx.map((i) => o.mean[i] - 2 * o.std[i]), hi = idx.map((i) => o.mean[i] + 2 * o.std[i]);
    const color = COLORS[m.kind];
    const p = plot(key, box, 'v', () => ({
      title: o.name + ' — ' + (m.kind === 'surrogate' ? 'simulation-only' : 'elevated') + ' vs ' + m.against,
      series: [{ label: 'measured' }, line('measured = predicted', '#999', { width: 1, dash: [4, 4] }),
               dots('held out', color), Object.assign(dots('trained on', '#9aa5b1'), { points: { show: true, size: 6, stroke: '#9aa5b1', fill: '#fff' } })],
      scales: { x: { time: false } },
      legend: { show: true },
      hooks: { draw: [(u) => { /* the ±2σ bars */
        const b = u.pvaBars, ctx = u.ctx;
        if (!b) return;
        ctx.save();
        ctx.lineWidth = 1;
        for (let i = 0; i < b.x.length; i++) {
          ctx.strokeStyle = b.held[i] ? color : '#c4ccd4';
          const cx = u.valToPos(b.x[i], 'x', true);
          ctx.beginPath();
          ctx.moveTo(cx, u.valToPos(b.lo[i], 'y', true));
          ctx.lineTo(cx, u.valToPos(b.hi[i], 'y', true));
          ctx.stroke();
        }
        ctx.restore();
      }] },
    }), [xs, xs, held, seen]);
    p.pvaBars = { x: xs, lo: lo, hi: hi, held: idx.map((i) => m.held_out[i]) };
    p.redraw(false, false);
  }

  function renderPva(v) {
    state.pva = v;
    const box = $('pva-plots'), tb = $('pva').tBodies[0];
    let want = 0;
    for (const m of v.models) want += m.error ? 0 : m.outputs.length;
    while (box.children.length < want) box.appendChild(document.createElement('div'));
    while (box.children.length > want) box.removeChild(box.lastChild);
    tb.textContent = '';
    let c = 0;
    for (const m of v.models) {
      m.outputs.forEach((o, j) => {
        const tr = document.createElement('tr');
        cell(tr, m.kind === 'surrogate' ? 'simulation-only' : 'elevated', m.kind === 'surrogate' ? 'sur' : 'elv');
        cell(tr, m.against);
        cell(tr, o.name);
        cell(tr, m.ids.length);
        cell(tr, fmt(o.coverage));
        cell(tr, o.n_held_out);
        cell(tr, fmt(o.coverage_held_out)).id = 'pva-cov-' + m.kind + '-' + j;
        tb.appendChild(tr);
        if (!m.error) pvaPlot('pva-' + m.kind + '-' + j, box.children[c++], m, o);
      });
    }
    $('pva-note').textContent = v.models.length ? '' : 'no model stored yet';
    state.pvaCount = (state.pvaCount || 0) + 1;
  }

  let pvaAt = 0, pvaKey = '';
  async function maybePva(s) {
    const key = (s.loaded.surrogate || '') + '|' + (s.loaded.elevated || '');
    const now = Date.now();
    if (key === pvaKey && now - pvaAt < 10000) return;
    pvaKey = key;
    pvaAt = now;
    try { renderPva(await getJSON('/api/pva')); } catch (e) { $('pva-note').textContent = e.message; }
  }

  /* ---- one run ---- */

  function runLabel(r) {
    const st = r.status === 'terminated' ? '■ stopped' : r.status;
    return r.id + ' · ' + st + (r.audit ? ' (audit re-run)' : '') + ' · ' + r.steps + ' steps';
  }

  function renderRunList(s) {
    const sel = $('run-select'), keep = sel.value;
    const ids = s.runs.map((r) => r.id).join(',');
    if (ids === state.runIds) return;
    state.runIds = ids;
    sel.textContent = '';
    for (const r of s.runs) {
      const opt = document.createElement('option');
      opt.value = r.id;
      opt.textContent = runLabel(r);
      sel.appendChild(opt);
    }
    if (state.runChosen && s.runs.some((r) => r.id === keep)) { sel.value = keep; return; }
    if (!state.runChosen) { /* show a stopped run by default: the prediction it was stopped on */
      const stop = s.runs.find((r) => r.status === 'terminated' && !r.audit);
      if (stop) sel.value = stop.id;
      if (sel.value && sel.value !== state.runShown) showRun(sel.value);
    }
  }

  /* history of a point: {steps, observed} and its predicted tail (or null) */
  function historyOf(pt) {
    const name = state.config.history ? state.config.history.name : null;
    const h = pt && name && pt.history ? pt.history[name] : null;
    return { observed: h && h.observed ? h.observed : [], predicted: h && h.predicted ? h.predicted : null };
  }

  function renderRun(v) {
    state.run = v;
    const cfg = state.config, run = v.run, stop = v.stop || (run.status === 'terminated' ? run : null);
    const audit = v.audit || (run.origin === 'audit' ? run : null);
    const hs = historyOf(stop || run), ha = audit ? historyOf(audit) : null, hr = historyOf(run);
    const pred = hs.predicted;
    let n = Math.max(hr.observed.length, hs.observed.length, ha ? ha.observed.length : 0,
                     pred ? pred.step[pred.step.length - 1] : 0);
    const xs = [], obs = [], mu = [], up = [], dn = [], au = [];
    /* the tail between its checkpoints: linear, so the ±2σ band is one piece */
    const ps = pred ? pred.step : [];
    function tailAt(st) {
      let i = 0;
      while (i < ps.length && ps[i] < st) i++;
      if (i >= ps.length || (ps[i] !== st && i === 0)) return null;
      const b = i, a = ps[i] === st ? i : i - 1, f = a === b ? 0 : (st - ps[a]) / (ps[b] - ps[a]);
      const m = pred.mean[a] + f * (pred.mean[b] - pred.mean[a]);
      const sd = pred.std[a] === null || pred.std[b] === null ? null : pred.std[a] + f * (pred.std[b] - pred.std[a]);
      return { m: m, sd: sd };
    }
    for (let st = 1; st <= n; st++) {
      xs.push(st);
      obs.push(st <= hs.observed.length ? hs.observed[st - 1] : null);
      au.push(ha && st <= ha.observed.length ? ha.observed[st - 1] : null);
      const t = tailAt(st);
      mu.push(t ? t.m : null);
      up.push(t && t.sd !== null ? t.m + 2 * t.sd : null);
      dn.push(t && t.sd !== null ? t.m - 2 * t.sd : null);
    }
    const name = cfg.history ? cfg.history.name : 'history';
    plot('run', $('plot-run'), 'r:' + (stop || run).sample_id, () => ({
      title: name + ' of ' + (stop || run).sample_id,
      series: [{ label: 'step' }, line('observed', COLORS.sim),
               line('predicted tail', COLORS.surrogate, { dash: [6, 4] }),
               line('+2σ', COLORS.surrogate, { width: 1, dash: [3, 3] }),
               line('−2σ', COLORS.surrogate, { width: 1, dash: [3, 3] }), line('audit re-run', COLORS.elevated)],
      bands: [{ series: [3, 4], fill: BANDS.surrogate }],
      scales: { x: { time: false } }, height: 230,
    }), [xs, obs, mu, up, dn, au]);
    state.runTail = ps.length;
    const tb = $('run-finals').tBodies[0];
    tb.textContent = '';
    const pr = (stop && stop.predicted) || {};
    cfg.outputs.forEach((o, j) => {
      const tr = document.createElement('tr');
      cell(tr, o);
      cell(tr, fmt(run.outputs ? run.outputs[o] : null));
      cell(tr, pr[o] !== undefined ? fmt(pr[o]) + ' ± ' + fmt(2 * pr[o + '.std']) : '–');
      cell(tr, audit && audit.outputs ? fmt(audit.outputs[o]) : '–');
      tb.appendChild(tr);
    });
    let text = (stop || run).sample_id + ': ' + (stop ? 'stopped at step ' + stop.steps + ' of ' + cfg.max_steps
      : run.status + ' after ' + run.steps + ' steps');
    if (v.reason) text += ' — ' + v.reason;
    if (run.origin === 'audit') text += '. This is the audit re-run of ' + (v.stop_id || '?') + '.';
    if (audit && v.audit_check) {
      text += '. Audit: ' + (v.audit_check.false_stop ? 'FALSE STOP' : 'the stop held') + ' (' +
        v.audit_check.n_outside + ' of ' + v.audit_check.n_tail + ' checkpoints outside ±3σ, tail NRMSE ' +
        fmt(v.audit_check.tail_nrmse) + ')';
    } else if (stop && v.audit_id && !v.audit) {
      text += '. Not audited (or its audit ' + v.audit_id + ' is not stored yet).';
    }
    $('run-summary').textContent = text;
    $('run-note').textContent = pred ? 'observed, and the tail predicted when it was stopped (±2σ)' : 'observed history';
  }

  async function showRun(id) {
    state.runShown = id;
    try {
      renderRun(await getJSON('/api/run?id=' + encodeURIComponent(id)));
    } catch (e) {
      $('run-note').textContent = 'cannot read the run: ' + e.message;
    }
  }

  /* ---- the suggested next shots ---- */

  function renderSuggest(s) {
    const sg = s.suggest, cfg = state.config, t = $('suggest');
    const key = sg ? sg.model + '|' + sg.shots : '';
    if (key === state.suggestKey) return;
    state.suggestKey = key;
    t.tHead.textContent = '';
    t.tBodies[0].textContent = '';
    if (!sg) return;
    const settable = cfg.inputs.map((v, i) => i).filter((i) => !cfg.inputs[i].calibration);
    const hr = document.createElement('tr');
    for (const h of ['#'].concat(settable.map((i) => cfg.inputs[i].name), ['reason'])) cell(hr, h);
    t.tHead.appendChild(hr);
    sg.rows.forEach((r, k) => {
      const tr = document.createElement('tr');
      cell(tr, k + 1);
      for (const i of settable) cell(tr, fmt(r.x[i]));
      cell(tr, 'variance removed ' + fmt(r.gain) + ', σ ' + fmt(r.sigma) + ' (the elevated model\'s uncertainty there), ' +
        (r.dist === null ? 'no shot yet' : fmt(r.dist) + ' from the nearest shot'));
      tr.dataset.sigma = r.sigma;
      t.tBodies[0].appendChild(tr);
    });
    $('shots').textContent = sg.error ? 'cannot suggest: ' + sg.error
      : 'Where a shot would reduce the elevated model\'s uncertainty most (' + sg.model + ', ' + sg.shots +
        ' shots stored), as `specline shot suggest` prints them:';
  }

  /* ---- the operator's view ---- */

  function buildSliders(cfg) {
    const box = $('sliders'), sel = $('axis');
    cfg.inputs.forEach((v, i) => {
      const row = document.createElement('div');
      row.className = 'slider';
      const lab = document.createElement('label');
      lab.textContent = v.name;
      lab.htmlFor = 'in-' + i;
      const input = document.createElement('input');
      input.type = 'range';
      input.id = 'in-' + i;
      input.min = v.lo;
      input.max = v.hi;
      input.step = (v.hi - v.lo) / 100;
      input.value = v.default;
      const out = document.createElement('output');
      out.id = 'out-' + i;
      state.x[i] = Number(input.value);
      out.textContent = fmt(state.x[i]);
      input.addEventListener('input', () => {
        state.x[i] = Number(input.value);
        out.textContent = fmt(state.x[i]);
        state.axis = i;
        sel.value = String(i);
        schedulePredict(40);
      });
      row.append(lab, input, out);
      box.appendChild(row);
      const opt = document.createElement('option');
      opt.value = String(i);
      opt.textContent = v.name;
      sel.appendChild(opt);
    });
    sel.addEventListener('change', () => { state.axis = Number(sel.value); schedulePredict(0); });
  }

  let timer = null;
  function schedulePredict(ms) {
    if (!state.config) return;
    clearTimeout(timer);
    timer = setTimeout(predict, ms);
  }

  async function predict() {
    const seq = ++state.seq;
    const url = '/api/predict?x=' + state.x.map((v) => String(v)).join(',') + '&axis=' + state.axis;
    try {
      const p = await getJSON(url);
      if (seq !== state.seq) return; /* a newer question was asked */
      state.pred = p;
      state.predictions++;
      renderPrediction(p);
    } catch (e) {
      $('pred-note').textContent = 'prediction unavailable: ' + e.message;
    }
  }

  function renderTable(p) {
    const cfg = state.config, K = cfg.history ? cfg.history.steps.length : 0;
    const tb = $('pred').tBodies[0];
    tb.textContent = '';
    const byKind = {};
    for (const m of p.models) byKind[m.kind] = m;
    cfg.outputs.forEach((name, j) => {
      const tr = document.createElement('tr');
      cell(tr, name);
      for (const k of KINDS) {
        const m = byKind[k];
        const td = cell(tr, '–', k === 'surrogate' ? 'sur' : 'elv');
        td.id = 'pred-' + k + '-' + j;
        if (m && m.mean) {
          const mu = m.mean[K + j], sd = m.std[K + j];
          td.textContent = fmt(mu) + ' ± ' + fmt(2 * sd);
          td.dataset.mean = mu;
          td.dataset.std = sd;
        } else if (m && m.error) {
          td.textContent = m.error;
        }
      }
      tb.appendChild(tr);
    });
    const n = p.models.length;
    $('pred-note').textContent = n === 0 ? 'no model stored yet: the learner makes one after the first runs'
      : 'mean ± 2σ at the point set by the sliders' + (byKind.elevated ? '' : ' (no elevated model yet: submit shots)');
  }

  /* One output along the axis: each model's mean and ±2σ band, the nearest points. */
  function outputPlot(p, j, box) {
    const cfg = state.config, axis = p.axis, rows = new Map();
    const models = p.models.filter((m) => m.curve);
    const width = 1 + 3 * models.length + 2;
    function row(x) {
      if (!rows.has(x)) rows.set(x, new Array(width).fill(null));
      return rows.get(x);
    }
    models.forEach((m, mi) => {
      m.curve.x.forEach((x, i) => {
        const r = row(x), mu = m.curve.mean[j][i], sd = m.curve.std[j][i];
        r[1 + 3 * mi] = mu;
        if (mu !== null && sd !== null) { r[2 + 3 * mi] = mu + 2 * sd; r[3 + 3 * mi] = mu - 2 * sd; }
      });
    });
    const pc = 1 + 3 * models.length;
    for (const pt of p.nearest.sim) if (pt.y[j] !== null) row(pt.x[axis])[pc] = pt.y[j];
    for (const pt of p.nearest.exp) if (pt.y[j] !== null) row(pt.x[axis])[pc + 1] = pt.y[j];
    const xs = Array.from(rows.keys()).sort((a, b) => a - b);
    const data = [xs];
    for (let c = 1; c < width; c++) data.push(xs.map((x) => rows.get(x)[c]));
    const series = [{ label: cfg.inputs[axis].name }], bands = [];
    models.forEach((m, mi) => {
      const name = m.kind === 'surrogate' ? 'simulation-only' : 'elevated';
      series.push(line(name, COLORS[m.kind]), line(name + ' +2σ', COLORS[m.kind], { width: 1, dash: [3, 3] }),
                  line(name + ' −2σ', COLORS[m.kind], { width: 1, dash: [3, 3] }));
      bands.push({ series: [2 + 3 * mi, 3 + 3 * mi], fill: BANDS[m.kind] });
    });
    series.push(dots('simulated', COLORS.sim), dots('experimental', COLORS.exp));
    const sig = 'o' + j + ':' + axis + ':' + models.map((m) => m.kind).join(',');
    plot('out' + j, box, sig, () => ({
      title: cfg.outputs[j], series: series, bands: bands, scales: { x: { time: false } },
      legend: { show: false },
      hooks: { draw: [(u) => { /* the point set by the sliders */
        const cx = u.valToPos(state.x[state.axis], 'x', true), ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = '#888';
        ctx.setLineDash([4, 4]);
        ctx.beginPath();
        ctx.moveTo(cx, u.bbox.top);
        ctx.lineTo(cx, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      }] },
    }), data);
  }

  function historyPlot(p, box) {
    const cfg = state.config, steps = cfg.history.steps, K = steps.length;
    const models = p.models.filter((m) => m.mean);
    const data = [steps], series = [{ label: 'step' }], bands = [];
    models.forEach((m, mi) => {
      const mu = m.mean.slice(0, K), sd = m.std.slice(0, K);
      data.push(mu, mu.map((v, i) => v + 2 * sd[i]), mu.map((v, i) => v - 2 * sd[i]));
      const name = m.kind === 'surrogate' ? 'simulation-only' : 'elevated';
      series.push(line(name, COLORS[m.kind]), line('+2σ', COLORS[m.kind], { width: 1, dash: [3, 3] }),
                  line('−2σ', COLORS[m.kind], { width: 1, dash: [3, 3] }));
      bands.push({ series: [2 + 3 * mi, 3 + 3 * mi], fill: BANDS[m.kind] });
    });
    plot('hist', box, 'h:' + models.map((m) => m.kind).join(','), () => ({
      title: cfg.history.name + ' (history)', series: series, bands: bands, scales: { x: { time: false } },
      legend: { show: false },
    }), data);
  }

  function renderNearest(p) {
    const tb = $('nearest').tBodies[0], cfg = state.config;
    tb.textContent = '';
    for (const [kind, list] of [['simulated', p.nearest.sim], ['experimental', p.nearest.exp]]) {
      for (const pt of list) {
        const tr = document.createElement('tr');
        cell(tr, kind, kind === 'experimental' ? 'exp' : '');
        cell(tr, pt.id);
        cell(tr, fmt(pt.distance));
        cell(tr, cfg.outputs.map((n, j) => n + ' ' + fmt(pt.y[j])).join(', '));
        tb.appendChild(tr);
      }
    }
  }

  function renderPrediction(p) {
    renderTable(p);
    const box = $('out-plots'), cfg = state.config;
    const want = cfg.outputs.length + (cfg.history ? 1 : 0);
    while (box.children.length < want) box.appendChild(document.createElement('div'));
    if (p.models.length === 0) return;
    cfg.outputs.forEach((_, j) => outputPlot(p, j, box.children[j]));
    if (cfg.history) historyPlot(p, box.children[cfg.outputs.length]);
    renderNearest(p);
  }

  /* ---- start ---- */

  function connect() {
    const es = new EventSource('/events');
    es.addEventListener('snapshot', (ev) => onSnapshot(JSON.parse(ev.data)));
    es.onopen = () => { $('live').textContent = 'live'; $('live').className = 'badge'; };
    es.onerror = () => { $('live').textContent = 'reconnecting'; $('live').className = 'badge off'; };
  }

  async function start() {
    if (location.search.indexOf('token=') >= 0) /* the cookie holds it now: keep it off the screen */
      history.replaceState(null, '', location.pathname);
    try {
      state.config = await getJSON('/api/config');
    } catch (e) {
      $('live').textContent = 'cannot load: ' + e.message;
      return;
    }
    $('campaign').textContent = state.config.campaign;
    buildSliders(state.config);
    $('run-select').addEventListener('change', () => { state.runChosen = true; showRun($('run-select').value); });
    connect();
    schedulePredict(0);
  }
  start();
})();
