// The nasforge dashboard page. Reads the JSON API, never writes. Every string from the store is
// put into the page with textContent (never innerHTML), so arch values, labels and error texts
// that hold HTML or script show as text.
"use strict";

const POLL_MS = 2000;
const state = {
  experiments: [], current: null, revision: null, detail: null, trials: [], reports: {},
  sortKey: "id", sortAsc: true, axis: "trials", picked: new Set(), cost: null, curveMetric: null, weightsLabel: null,
};

const $ = (id) => document.getElementById(id);
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const fmt = (v) => NFPlot.fmt(v);
function fmtValue(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") return Math.abs(v) < 1e4 && !Number.isInteger(v) ? v.toFixed(4) : fmt(v);
  return typeof v === "string" ? v : JSON.stringify(v);
}
function fmtDuration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
}
const archText = (arch) => Object.entries(arch || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("  ");
const firstLine = (s) => (s || "").split("\n").find((l) => l.trim()) || "";
const lastLine = (s) => { const lines = (s || "").split("\n").filter((l) => l.trim()); return lines[lines.length - 1] || ""; };

async function getJSON(url) {
  const res = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}
// an experiment is addressed by its name; by its id only when the name cannot be one path segment
function expKey() {
  const e = state.experiments.find((x) => x.id === state.current);
  return e && !/[/\\]/.test(e.name) && e.name !== "." && e.name !== ".." ? e.name : String(state.current);
}
const api = (suffix) => `/api/experiments/${encodeURIComponent(expKey())}${suffix || ""}`;

// -- polling ---------------------------------------------------------------------------------------
let timer = null, busy = false, again = false;
async function poll() {
  if (busy) { again = true; return; }
  if (document.hidden) { clearTimeout(timer); timer = setTimeout(poll, POLL_MS); return; }  // a background tab rests
  busy = true;
  clearTimeout(timer);
  try {
    const data = await getJSON("/api/experiments");
    state.experiments = data.experiments;
    $("store-name").textContent = data.store;
    if (!state.experiments.some((e) => e.id === state.current)) {
      state.current = state.experiments.length ? state.experiments[0].id : null;
      state.revision = null;
    }
    renderNav();
    const exp = state.experiments.find((e) => e.id === state.current);
    if (!exp) { showMessage("This store holds no experiment yet; the page will show one as soon as it starts."); }
    else if (exp.revision !== state.revision) { await loadExperiment(exp.revision); }
    else { renderSummary(exp); }
    $("live-dot").className = "dot ok";
    $("live-text").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    $("live-dot").className = "dot err";
    $("live-text").textContent = "offline: " + err.message;
  } finally {
    busy = false;
    timer = setTimeout(poll, again ? 0 : POLL_MS);
    again = false;
  }
}

async function loadExperiment(revision) {
  const [detail, trials] = await Promise.all([getJSON(api()), getJSON(api("/trials"))]);
  state.detail = detail;
  state.trials = trials.trials;
  const ids = curveIds();
  state.reports = ids.length ? (await getJSON(api(`/reports?ids=${ids.join(",")}`))).trials : {};
  state.revision = revision;
  document.body.setAttribute("data-revision", revision);
  showMessage(null);
  renderAll();
}

function showMessage(text) {
  $("message").hidden = !text;
  $("message").textContent = text || "";
}

// -- rendering -------------------------------------------------------------------------------------
function renderNav() {
  const nav = $("experiments");
  nav.replaceChildren(...state.experiments.map((e) => h("button", {
    type: "button", class: e.id === state.current ? "on" : "", "data-id": e.id, title: `${e.name} (${e.status})`,
    onclick: () => { state.current = e.id; state.revision = null; state.picked.clear(); poll.now(); },
  }, e.name)));
}

function renderAll() {
  const d = state.detail;
  renderSummary(d);
  renderBest();
  renderCost();
  renderCurves();
  renderWeights();
  renderChosen();
  renderTrials();
  void d;
}

function card(key, value, sub, extra) {
  const long = typeof value === "string" && value.length > 16;
  return h("div", { class: "card", id: `card-${key}` }, h("div", { class: "k" }, key), h("div", { class: long ? "v long" : "v", title: long ? value : null }, value), sub ? h("div", { class: "s", title: sub }, sub) : null, extra || null);
}

function renderSummary(s) {
  const counts = s.counts || {};
  const order = ["SUCCEEDED", "FAILED", "STOPPED", "RUNNING", "WAITING"];
  const countLine = order.filter((k) => counts[k]).map((k) => `${counts[k]} ${k.toLowerCase()}`).join(" · ") || "none yet";
  const b = s.budget || {};
  let budget = `${b.trials_used}${b.max_trials ? " / " + b.max_trials : ""} trial${b.max_trials || b.trials_used !== 1 ? "s" : ""}`;
  const bar = b.trials_fraction !== null && b.trials_fraction !== undefined
    ? h("div", { class: "bar" }, h("div", { style: `width:${Math.min(100, 100 * b.trials_fraction).toFixed(1)}%` })) : null;
  const time = `${fmtDuration(b.elapsed)} elapsed${b.max_time ? " · max " + fmtDuration(b.max_time) + " per run" : ""}`;
  const owner = s.owner ? `pid ${s.owner.pid} on ${s.owner.host}` : (s.status_source === "recorded" ? "as recorded by the run" : "");
  const best = s.best ? fmtValue(s.best.value) : "-";
  const bestSub = s.best ? `trial ${s.best.trial} · ${s.metric} (${s.mode})` : `${s.metric} (${s.mode})`;
  const status = h("span", { class: `badge ${s.status}`, id: "exp-status" }, s.status);
  const total = h("span", { id: "count-total" }, String(s.n_trials));
  $("summary").replaceChildren(
    card("status", status, owner),
    card("trials", total, countLine),
    card("budget", budget, time, bar),
    card("best " + s.metric, best, bestSub),
    card("strategy", s.strategy || "-", s.strategy_repr || ""),
    card("space", s.space_size !== null && s.space_size !== undefined ? fmt(s.space_size) : "-", `${s.space_labels} labels · ${s.model_space || ""}`),
  );
  for (const k of order) $("summary").setAttribute(`data-${k.toLowerCase()}`, String(counts[k] || 0));
  document.title = `${s.name} · nasforge dashboard`;
}

function renderBest() {
  const d = state.detail;
  const byTime = state.axis === "time";
  const pts = byTime ? d.best_over_time : d.best_over_trials;
  const x = (p) => (byTime ? p.time / 60 : p.trial);
  const series = [
    { label: "trial", type: "scatter", color: "#93c5fd", points: pts.map((p) => ({ x: x(p), y: p.value, id: p.trial, tip: `trial ${p.trial}: ${d.metric} ${fmtValue(p.value)}` })) },
    { label: "best so far", type: "step", color: "#dc2626", width: 2.5, points: pts.map((p) => ({ x: x(p), y: p.best })) },
  ];
  if (!byTime && d.failed_trials.length && pts.length) {
    const low = Math.min(...pts.map((p) => p.value));
    series.push({ label: "failed", type: "scatter", marker: "x", color: "#475569", points: d.failed_trials.map((id) => ({ x: id, y: low, id, tip: `trial ${id} failed` })) });
  }
  NFPlot.chart($("plot-best"), {
    height: 270, series, xLabel: byTime ? "minutes since the first trial started" : "trial", yLabel: d.metric, xInteger: !byTime,
    empty: "no successful trial yet", legendRight: d.mode === "max" ? false : true, onPoint: pickTrial,
  });
  $("axis-trials").className = byTime ? "" : "on";
  $("axis-time").className = byTime ? "on" : "";
}

function fillSelect(sel, options, value) {
  const same = sel.options.length === options.length && [...sel.options].every((o, i) => o.value === options[i]);
  if (!same) sel.replaceChildren(...options.map((o) => h("option", { value: o }, o)));
  sel.value = value;
  sel.parentElement.hidden = options.length === 0;
}

function renderCost() {
  const d = state.detail;
  const costs = d.cost_metrics;
  if (!costs.includes(state.cost)) state.cost = costs[0] || null;
  fillSelect($("cost-select"), costs, state.cost);
  $("cost-select").disabled = costs.length === 0;
  const data = state.cost ? d.metric_vs_cost[state.cost] : null;
  const spread = data && data.points.length ? Math.max(...data.points.map((p) => p.cost)) / Math.max(1e-12, Math.min(...data.points.map((p) => p.cost))) : 1;
  NFPlot.chart($("plot-cost"), {
    height: 270, xLabel: state.cost ? `${state.cost}${spread > 20 ? " (log scale)" : ""}` : "cost", yLabel: d.metric, xLog: spread > 20,
    empty: costs.length ? "no successful trial yet" : "no trial reports a cost (params, flops, latency)",
    series: data ? [
      { label: "trial", type: "scatter", color: "#93c5fd", points: data.points.filter((p) => !p.pareto).map((p) => ({ x: p.cost, y: p.value, id: p.trial, tip: `trial ${p.trial}: ${d.metric} ${fmtValue(p.value)}, ${state.cost} ${fmt(p.cost)}` })) },
      { label: "Pareto front", type: "step", color: "#16a34a", width: 2, dash: "5 3", points: data.front.map((p) => ({ x: p.cost, y: p.value })) },
      { label: "on the front", type: "scatter", color: "#16a34a", r: 5, className: "pareto", points: data.front.map((p) => ({ x: p.cost, y: p.value, id: p.trial, tip: `trial ${p.trial} (Pareto): ${d.metric} ${fmtValue(p.value)}, ${state.cost} ${fmt(p.cost)}` })) },
    ] : [],
    legendRight: true, onPoint: pickTrial,
  });
}

function curveIds() {
  const d = state.detail;
  if (!d) return [];
  if (state.picked.size) return [...state.picked].slice(0, 12);
  const running = state.trials.filter((t) => t.status === "RUNNING" && t.n_reports > 0).map((t) => t.id);
  return [...d.top_trials, ...running].slice(0, 12);
}

async function renderCurvesFetch() {
  const ids = curveIds();
  state.reports = ids.length ? (await getJSON(api(`/reports?ids=${ids.join(",")}`))).trials : {};
  renderCurves();
}

function renderCurves() {
  const d = state.detail;
  const metrics = d.report_metrics;
  if (!metrics.includes(state.curveMetric)) state.curveMetric = metrics.includes(d.metric) ? d.metric : metrics[0] || null;
  fillSelect($("curve-select"), metrics, state.curveMetric);
  const series = Object.entries(state.reports).map(([id, t]) => ({
    label: `trial ${id}${t.status === "RUNNING" ? " (running)" : ""}`, type: "line", dots: true, dash: t.status === "RUNNING" ? "5 3" : null,
    points: t.reports.filter((r) => typeof r.metrics[state.curveMetric] === "number").map((r) => ({ x: r.step, y: r.metrics[state.curveMetric], tip: `trial ${id}, step ${r.step}: ${fmtValue(r.metrics[state.curveMetric])}` })),
  }));
  NFPlot.chart($("plot-curves"), {
    height: 270, series, xLabel: "step (epoch)", yLabel: state.curveMetric || "", xInteger: true,
    empty: metrics.length ? "no reports from the selected trials" : "no trial reported intermediate values", legendRight: true,
  });
}

function renderWeights() {
  const w = state.detail.arch_weights;
  const panel = $("panel-weights");
  panel.hidden = !w;
  if (!w) return;
  const epochs = w.epochs.filter((e) => e.weights);
  const labels = Object.keys((epochs.length ? epochs[epochs.length - 1].weights : w.final) || {});
  if (!labels.includes(state.weightsLabel)) state.weightsLabel = labels[0] || null;
  fillSelect($("weights-select"), labels, state.weightsLabel);
  $("weights-select").parentElement.hidden = !epochs.length;
  const names = (label, n) => { const c = w.candidates[label]; return Array.from({ length: n }, (_, k) => (c && c[k] !== undefined ? (typeof c[k] === "string" ? c[k] : JSON.stringify(c[k])) : String(k))); };
  if (epochs.length && state.weightsLabel) {
    const n = epochs[epochs.length - 1].weights[state.weightsLabel].length;
    const cand = names(state.weightsLabel, n);
    NFPlot.chart($("plot-weights"), {
      height: 250, xLabel: "epoch", xInteger: true, yLabel: `weight of each candidate (${state.weightsLabel})`, legendRight: true,
      series: cand.map((name, k) => ({ label: name, type: "line", dots: true, points: epochs.filter((e) => e.weights[state.weightsLabel]).map((e) => ({ x: e.epoch, y: e.weights[state.weightsLabel][k], tip: `epoch ${e.epoch}: ${name} ${fmtValue(e.weights[state.weightsLabel][k])}` })) })),
    });
  } else if (w.epochs.length) {
    const keys = [...new Set(w.epochs.flatMap((e) => Object.keys(e.metrics)))];
    NFPlot.chart($("plot-weights"), {
      height: 220, xLabel: "epoch", xInteger: true, yLabel: "supernet training", legendRight: true,
      series: keys.map((k) => ({ label: k, type: "line", dots: true, points: w.epochs.filter((e) => typeof e.metrics[k] === "number").map((e) => ({ x: e.epoch, y: e.metrics[k] })) })),
    });
  } else {
    $("plot-weights").replaceChildren(h("p", { class: "hint" }, "no per-epoch record in the store"));
  }
  const final = w.final || (epochs.length ? epochs[epochs.length - 1].weights : null);
  if (final) {
    $("weights-final").replaceChildren();
    $("weights-final").appendChild(h("h3", {}, epochs.length ? "final weights" : "final weights (per-epoch weights were not recorded)"));
    const box = h("div", {});
    $("weights-final").appendChild(box);
    NFPlot.bars(box, { rows: Object.entries(final).map(([label, values]) => ({ label, values, names: names(label, values.length) })) });
  } else {
    $("weights-final").replaceChildren();
  }
}

function renderChosen() {
  const d = state.detail;
  const c = d.chosen;
  const root = $("chosen");
  const link = $("download-arch");
  if (!c) {
    link.hidden = true;
    root.replaceChildren(h("p", { class: "hint" }, "no successful trial yet"));
    return;
  }
  link.hidden = false;
  link.href = api("/arch.json");
  link.setAttribute("download", `best_arch_trial_${c.trial}.json`);
  const kv = h("div", { class: "kv", id: "chosen-arch" }, Object.entries(c.arch).flatMap(([k, v]) => [h("div", { class: "k" }, k), h("div", { class: "v" }, typeof v === "string" ? v : JSON.stringify(v))]));
  const metrics = h("div", { class: "kv" }, Object.entries(c.metrics).flatMap(([k, v]) => [h("div", { class: "k" }, k), h("div", { class: "v" }, fmtValue(v))]));
  const left = h("div", {}, h("h3", {}, `trial ${c.trial} · ${d.metric} ${fmtValue(c.value)}`), kv);
  const right = h("div", {});
  if (c.cells.length) {
    for (const cell of c.cells) {
      right.appendChild(h("h3", {}, cell.name === "cell" ? "cell" : `cell ${cell.name}`));
      const box = h("div", { class: "dag", "data-cell": cell.name });
      right.appendChild(box);
      NFPlot.dag(box, cell);
    }
  }
  const tests = d.tests;
  if (tests.length) {
    right.appendChild(h("h3", {}, "test-set results"));
    const keys = [...new Set(tests.flatMap((t) => Object.keys(t.metrics)))];
    const head = h("tr", {}, h("th", {}, "trial"), h("th", {}, "status"), h("th", {}, "protocol"), keys.map((k) => h("th", {}, k)), h("th", {}, "error"));
    const body = tests.map((t) => h("tr", {},
      h("td", { class: "num" }, t.trial_id === null ? "-" : String(t.trial_id)),
      h("td", {}, h("span", { class: `badge ${t.status}` }, t.status)),
      h("td", {}, t.retrain ? "retrained on train+val" : "trained on train"),
      keys.map((k) => h("td", { class: "num" }, fmtValue(t.metrics[k]))),
      h("td", { class: "err", title: t.error || "" }, lastLine(t.error))));
    right.appendChild(h("div", { class: "table-wrap" }, h("table", { id: "tests-table" }, h("thead", {}, head), h("tbody", {}, body))));
  } else {
    right.appendChild(h("p", { class: "hint" }, "no test-set evaluation yet (exp.test(...) stores one)"));
  }
  right.appendChild(h("h3", {}, "its metrics in the search"));
  right.appendChild(metrics);
  root.replaceChildren(h("div", { class: "chosen-grid" }, left, right));
}

const COLUMNS = [
  { key: "pick", title: "", sort: null },
  { key: "id", title: "trial", num: true, sort: (t) => t.id },
  { key: "status", title: "status", sort: (t) => t.status },
  { key: "metric", title: "metric", num: true, sort: (t) => t.metrics[state.detail.metric] },
  { key: "params", title: "params", num: true, sort: (t) => t.params },
  { key: "flops", title: "FLOPs", num: true, sort: (t) => t.flops },
  { key: "duration", title: "duration", num: true, sort: (t) => t.duration },
  { key: "arch", title: "arch", sort: (t) => archText(t.arch) },
  { key: "error", title: "failure reason", sort: (t) => t.error || "" },
];

function visibleTrials() {
  const status = $("status-filter").value;
  const q = $("text-filter").value.trim().toLowerCase();
  let rows = state.trials.filter((t) => (!status || t.status === status) && (!q || (archText(t.arch) + " " + (t.error || "")).toLowerCase().includes(q)));
  const col = COLUMNS.find((c) => c.key === state.sortKey) || COLUMNS[1];
  const key = (t) => col.sort(t);
  rows = rows.slice().sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === y) return a.id - b.id;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (state.sortAsc ? 1 : -1);
  });
  return rows;
}

function renderTrials() {
  const d = state.detail;
  const hasFlops = state.trials.some((t) => t.flops !== null);
  const cols = COLUMNS.filter((c) => c.key !== "flops" || hasFlops);
  const best = d.chosen ? d.chosen.trial : null;
  const head = h("tr", {}, cols.map((c) => h("th", {
    class: c.key === state.sortKey ? `sorted ${state.sortAsc ? "asc" : ""}` : "", "data-key": c.key,
    onclick: c.sort ? () => { if (state.sortKey === c.key) state.sortAsc = !state.sortAsc; else { state.sortKey = c.key; state.sortAsc = c.key === "id" || c.key === "arch" || c.key === "status"; if (c.key === "metric") state.sortAsc = d.mode === "min"; } renderTrials(); } : null,
  }, c.key === "metric" ? d.metric : c.title)));
  const rows = visibleTrials();
  const body = rows.map((t) => h("tr", { class: t.id === best ? "best" : "", "data-id": t.id, "data-status": t.status }, cols.map((c) => {
    switch (c.key) {
      case "pick": return h("td", {}, h("input", { type: "checkbox", title: "show its learning curve", checked: state.picked.has(t.id), onchange: (e) => { if (e.target.checked) state.picked.add(t.id); else state.picked.delete(t.id); renderCurvesFetch(); } }));
      case "id": return h("td", { class: "num" }, String(t.id));
      case "status": return h("td", {}, h("span", { class: `badge ${t.status}` }, t.status));
      case "metric": return h("td", { class: "num" }, fmtValue(t.metrics[d.metric]));
      case "params": return h("td", { class: "num" }, t.params === null ? "-" : fmt(t.params));
      case "flops": return h("td", { class: "num" }, t.flops === null ? "-" : fmt(t.flops));
      case "duration": return h("td", { class: "num" }, t.duration === null ? (t.status === "RUNNING" && t.started ? `${fmtDuration(Math.max(0, Date.now() / 1000 - t.started))} …` : "-") : fmtDuration(t.duration));
      case "arch": return h("td", { class: "arch" }, archText(t.arch));
      case "error": return h("td", { class: "err", title: t.error || "" }, t.error ? lastLine(t.error) : "");
      default: return h("td", {});
    }
  })));
  $("trials-table").tHead.replaceChildren(head);
  $("trials-table").tBodies[0].replaceChildren(...body);
  $("trial-count").textContent = `${rows.length} of ${state.trials.length} shown`;
}

function pickTrial(id) {
  const row = document.querySelector(`#trials-table tr[data-id="${Number(id)}"]`);
  if (!state.picked.has(id)) { state.picked.add(id); renderCurvesFetch().then(renderTrials); }
  if (row) row.scrollIntoView({ block: "center", behavior: "smooth" });
}

// -- wiring ------------------------------------------------------------------------------------------
poll.now = () => poll();
document.addEventListener("DOMContentLoaded", () => {
  $("axis-trials").addEventListener("click", () => { state.axis = "trials"; if (state.detail) renderBest(); });
  $("axis-time").addEventListener("click", () => { state.axis = "time"; if (state.detail) renderBest(); });
  $("cost-select").addEventListener("change", (e) => { state.cost = e.target.value; renderCost(); });
  $("curve-select").addEventListener("change", (e) => { state.curveMetric = e.target.value; renderCurves(); });
  $("weights-select").addEventListener("change", (e) => { state.weightsLabel = e.target.value; renderWeights(); });
  $("status-filter").addEventListener("change", () => { if (state.detail) renderTrials(); });
  $("text-filter").addEventListener("input", () => { if (state.detail) renderTrials(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll.now(); });
  let resize = null;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(() => { if (state.detail) renderAll(); }, 150); });
  poll();
});
