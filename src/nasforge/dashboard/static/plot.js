// nasforge's small SVG charting code (part of nasforge, MIT). No dependencies, no network.
// Every piece of text goes in through textContent / setAttribute, never as HTML.
"use strict";

const NFPlot = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, str, attrs) {
    const t = el("text", Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = String(str);
    return t;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "-";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) {
      if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
      if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
      return v.toExponential(1);
    }
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    if (Number.isInteger(v)) return String(v);
    return String(parseFloat(a >= 100 ? v.toFixed(1) : v.toPrecision(3)));
  }

  function niceTicks(lo, hi, count, integer) {
    if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    const raw = (hi - lo) / Math.max(count, 1);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    if (integer) step = Math.max(1, Math.round(step) === 2.5 * mag ? 2 * mag : Math.round(step));
    const start = Math.ceil(lo / step - 1e-9) * step;
    const ticks = [];
    for (let v = start; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return { lo, hi, ticks };
  }

  function logTicks(lo, hi) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    const ticks = [];
    for (let e = a; e <= b; e++) {
      for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
        const v = m * Math.pow(10, e);
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
      }
    }
    return ticks;
  }

  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    return lo <= hi ? [lo, hi] : [0, 1];
  }

  // chart(container, spec): spec = {height, xLabel, yLabel, xLog, yLog, series: [{label, type: "line"|"step"|"scatter",
  //   points: [{x, y, tip, id}], color, marker: "circle"|"x"|"diamond", r, width, dash, className}], onPoint(id)}
  function chart(container, spec) {
    container.replaceChildren();
    const W = Math.max(container.clientWidth || 480, 260), H = spec.height || 260;
    const m = { l: 58, r: 14, t: 26, b: 40 };
    const lrows = spec.legend === false ? [] : legendRows((spec.series || []).filter((s) => s.points && s.points.length), W - m.l - m.r);
    m.t += Math.max(0, lrows.length - 1) * 16;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "nf-chart", role: "img" }, container);
    if (spec.title) { const t = el("title", {}, svg); t.textContent = spec.title; }
    const series = (spec.series || []).filter((s) => s.points && s.points.length);
    const xs = series.flatMap((s) => s.points.map((p) => p.x)), ys = series.flatMap((s) => s.points.map((p) => p.y));
    if (!xs.length) {
      text(svg, W / 2, H / 2, spec.empty || "no data yet", { "text-anchor": "middle", class: "nf-empty" });
      return svg;
    }
    let [x0, x1] = extent(xs), [y0, y1] = extent(ys);
    if (spec.yRange) { if (spec.yRange[0] !== null) y0 = Math.min(y0, spec.yRange[0]); if (spec.yRange[1] !== null) y1 = Math.max(y1, spec.yRange[1]); }
    const xLog = spec.xLog && x0 > 0, yLog = spec.yLog && y0 > 0;
    let xt, yt;
    if (xLog) { const pad = Math.pow(x1 / x0, 0.06) || 1.1; x0 /= pad; x1 *= pad; xt = logTicks(x0, x1); }
    else { const n = niceTicks(x0, x1, Math.max(2, Math.round(W / 90)), spec.xInteger); xt = n.ticks; const pad = (n.hi - n.lo) * 0.04; x0 = n.lo - pad; x1 = n.hi + pad; }
    if (yLog) { const pad = Math.pow(y1 / y0, 0.05) || 1.1; y0 /= pad; y1 *= pad; yt = logTicks(y0, y1); }
    else { const n = niceTicks(y0, y1, Math.max(2, Math.round(H / 55))); yt = n.ticks; const pad = (n.hi - n.lo) * 0.08; y0 = n.lo - pad; y1 = n.hi + pad; }
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    const sx = (v) => m.l + (xLog ? Math.log(v / x0) / Math.log(x1 / x0) : (v - x0) / (x1 - x0 || 1)) * pw;
    const sy = (v) => m.t + ph - (yLog ? Math.log(v / y0) / Math.log(y1 / y0) : (v - y0) / (y1 - y0 || 1)) * ph;
    const grid = el("g", { class: "nf-grid" }, svg);
    for (const v of yt) {
      if (v < y0 || v > y1) continue;
      el("line", { x1: m.l, x2: m.l + pw, y1: sy(v), y2: sy(v) }, grid);
      text(grid, m.l - 6, sy(v) + 4, fmt(v), { "text-anchor": "end", class: "nf-tick" });
    }
    for (const v of xt) {
      if (v < x0 || v > x1) continue;
      el("line", { x1: sx(v), x2: sx(v), y1: m.t, y2: m.t + ph }, grid);
      text(grid, sx(v), m.t + ph + 16, fmt(v), { "text-anchor": "middle", class: "nf-tick" });
    }
    el("rect", { x: m.l, y: m.t, width: pw, height: ph, class: "nf-frame" }, svg);
    if (spec.xLabel) text(svg, m.l + pw / 2, H - 6, spec.xLabel, { "text-anchor": "middle", class: "nf-axis-label" });
    if (spec.yLabel) text(svg, 14, m.t + ph / 2, spec.yLabel, { "text-anchor": "middle", class: "nf-axis-label", transform: `rotate(-90 14 ${m.t + ph / 2})` });
    const clipId = "clip" + Math.random().toString(36).slice(2);
    el("rect", { x: m.l, y: m.t, width: pw, height: ph }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      const g = el("g", { class: "nf-series " + (s.className || "") }, plot);
      const pts = s.points.filter((p) => p.x !== null && p.y !== null && Number.isFinite(p.x) && Number.isFinite(p.y));
      if (s.type === "line" || s.type === "step") {
        let d = "";
        pts.forEach((p, k) => {
          if (k === 0) d += `M${sx(p.x)},${sy(p.y)}`;
          else if (s.type === "step") d += `H${sx(p.x)}V${sy(p.y)}`;
          else d += `L${sx(p.x)},${sy(p.y)}`;
        });
        if (s.type === "step" && s.extendTo !== undefined && pts.length) d += `H${sx(Math.min(s.extendTo, x1))}`;
        el("path", { d, fill: "none", stroke: color, "stroke-width": s.width || 2, "stroke-dasharray": s.dash || "none", class: "nf-line" + (s.dash ? " nf-dashed" : "") }, g);
        if (s.dots) pts.forEach((p) => dot(g, sx(p.x), sy(p.y), color, "circle", 2.5, p, spec));
      } else {
        pts.forEach((p) => dot(g, sx(p.x), sy(p.y), color, s.marker || "circle", s.r || 3.5, p, spec, s.hollow));
      }
    });
    legend(svg, lrows, m.l + pw, 4);
    return svg;
  }

  function dot(g, x, y, color, marker, r, p, spec, hollow) {
    let node;
    if (marker === "x") {
      node = el("path", { d: `M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}`, stroke: color, "stroke-width": 1.8, class: "point" }, g);
    } else if (marker === "diamond") {
      node = el("path", { d: `M${x},${y - r * 1.4}L${x + r * 1.4},${y}L${x},${y + r * 1.4}L${x - r * 1.4},${y}Z`, fill: color, stroke: "#fff", "stroke-width": 1, class: "point" }, g);
    } else {
      node = el("circle", { cx: x, cy: y, r, fill: hollow ? "#fff" : color, "fill-opacity": hollow ? 1 : 0.75, stroke: hollow ? color : "none", "stroke-width": 1.5, class: "point" }, g);
    }
    if (p.id !== undefined) node.setAttribute("data-id", String(p.id));
    if (p.tip) { const t = el("title", {}, node); t.textContent = p.tip; }
    if (spec.onPoint && p.id !== undefined) {
      node.style.cursor = "pointer";
      node.addEventListener("click", () => spec.onPoint(p.id));
    }
  }

  // rows of legend items, right-aligned, above the plot area; returns the rows (to size the top margin)
  function legendRows(series, width) {
    const items = series.filter((s) => s.label).map((s) => ({ s, color: s.color || PALETTE[series.indexOf(s) % PALETTE.length], w: String(s.label).length * 6.2 + 30 }));
    const rows = [];
    let row = [], used = 0;
    for (const it of items) {
      if (row.length && used + it.w > width) { rows.push(row); row = []; used = 0; }
      row.push(it);
      used += it.w;
    }
    if (row.length) rows.push(row);
    return rows;
  }

  function legend(svg, rows, right, y) {
    if (!rows.length) return;
    const g = el("g", { class: "nf-legend" }, svg);
    rows.forEach((row, r) => {
      let x = right - row.reduce((a, it) => a + it.w, 0);
      const cy = y + 8 + r * 16;
      for (const { s, color, w } of row) {
        if (s.type === "scatter") {
          if (s.marker === "x") el("path", { d: `M${x + 5},${cy - 4}L${x + 13},${cy + 4}M${x + 5},${cy + 4}L${x + 13},${cy - 4}`, stroke: color, "stroke-width": 1.8 }, g);
          else el("circle", { cx: x + 9, cy, r: 4, fill: s.hollow ? "#fff" : color, stroke: color }, g);
        } else {
          el("line", { x1: x + 2, x2: x + 16, y1: cy, y2: cy, stroke: color, "stroke-width": 2.5, "stroke-dasharray": s.dash || "none" }, g);
        }
        text(g, x + 20, cy + 4, s.label, { class: "nf-legend-text" });
        x += w;
      }
    });
  }

  // bars(container, spec): horizontal stacked bars, spec = {rows: [{label, values: [..], names: [..]}]}
  function bars(container, spec) {
    container.replaceChildren();
    const rows = spec.rows || [];
    const W = Math.max(container.clientWidth || 480, 260), rowH = 22, labelW = Math.min(180, W * 0.3);
    const H = rows.length * rowH + 10;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "nf-chart nf-bars" }, container);
    rows.forEach((row, r) => {
      const y = 5 + r * rowH;
      const lab = text(svg, labelW - 6, y + 15, row.label, { "text-anchor": "end", class: "nf-tick" });
      lab.setAttribute("data-label", row.label);
      let x = labelW;
      const total = row.values.reduce((a, b) => a + (b || 0), 0) || 1;
      row.values.forEach((v, k) => {
        const w = ((v || 0) / total) * (W - labelW - 10);
        const rect = el("rect", { x, y: y + 2, width: Math.max(w, 0), height: rowH - 6, fill: PALETTE[k % PALETTE.length], class: "nf-bar" }, svg);
        const t = el("title", {}, rect);
        t.textContent = `${row.label} = ${row.names[k]}: ${(v || 0).toFixed(3)}`;
        if (w > 40) text(svg, x + 4, y + 14, String(row.names[k]), { class: "nf-bar-text" });
        x += w;
      });
    });
    return svg;
  }

  // dag(container, cell): cell = {name, inputs: [ids], nodes: [ids], edges: [{from, to, op}]}
  function dag(container, cell) {
    const all = [...cell.inputs, ...cell.nodes];
    const n = all.length;
    const W = Math.max(container.clientWidth || 520, 300);
    const gap = Math.max(90, Math.min(170, (W - 80) / Math.max(n - 1, 1)));
    const width = Math.max(W, gap * (n - 1) + 80);
    const maxSpan = Math.max(1, ...cell.edges.map((e) => all.indexOf(e.to) - all.indexOf(e.from)));
    const H = 80 + Math.min(maxSpan, 6) * 34 + 40;
    const svg = el("svg", { viewBox: `0 0 ${width} ${H}`, width, height: H, class: "nf-chart nf-dag" }, container);
    const cy = H - 44;
    const px = (id) => 40 + all.indexOf(id) * gap;
    const defs = el("defs", {}, svg);
    const mk = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0L10,5L0,10z", fill: "#64748b" }, mk);
    const ops = [...new Set(cell.edges.map((e) => String(e.op)))];
    cell.edges.forEach((e) => {
      const a = px(e.from), b = px(e.to), span = all.indexOf(e.to) - all.indexOf(e.from);
      const none = /^(none|zero)$/i.test(String(e.op));
      const color = none ? "#cbd5e1" : PALETTE[ops.indexOf(String(e.op)) % PALETTE.length];
      const lift = span <= 1 ? 0 : Math.min(span, 6) * 34;
      const d = span <= 1 ? `M${a + 16},${cy}L${b - 16},${cy}` : `M${a + 8},${cy - 14}Q${(a + b) / 2},${cy - 14 - lift * 2} ${b - 8},${cy - 14}`;
      const path = el("path", { d, fill: "none", stroke: color, "stroke-width": none ? 1.2 : 2.2, "stroke-dasharray": none ? "4 3" : "none", "marker-end": "url(#arrow)", class: "nf-edge" }, svg);
      const t = el("title", {}, path);
      t.textContent = `${e.from} → ${e.to}: ${e.op}`;
      const lx = (a + b) / 2, ly = span <= 1 ? cy - 8 : cy - 14 - lift;
      const op = String(e.op);
      const label = text(svg, lx, ly, op.length > 22 ? op.slice(0, 21) + "…" : op, { "text-anchor": "middle", class: "nf-edge-label", fill: none ? "#94a3b8" : color });
      label.setAttribute("data-op", op);
      el("title", {}, label).textContent = op;
    });
    all.forEach((id) => {
      const isInput = cell.inputs.includes(id);
      el("circle", { cx: px(id), cy, r: 16, class: isInput ? "nf-node nf-node-input" : "nf-node" }, svg);
      text(svg, px(id), cy + 4, String(id), { "text-anchor": "middle", class: "nf-node-text" });
      if (isInput) text(svg, px(id), cy + 32, "input", { "text-anchor": "middle", class: "nf-tick" });
    });
    return svg;
  }

  return { chart, bars, dag, fmt, PALETTE };
})();
