"""``nasforge report STORE -o DIR``: PNG plots and one self-contained HTML file, for people without a browser
session on the machine that runs the search (or for a lab notebook).

Per experiment (``<name>`` made file-name safe): ``<name>-best_so_far.png``, ``<name>-best_over_time.png``,
``<name>-metric_vs_<cost>.png`` (cost: params / FLOPs… when trials report it), ``<name>-curves.png``
(intermediate values of the top trials), ``<name>-cell.png`` (cell spaces), ``<name>-arch_weights.png``
(one-shot runs that recorded weights per epoch); and ``report.html`` with every plot embedded (no
external file, no script) and every stored string escaped.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from nasforge import viz
from nasforge.dashboard import data
from nasforge.store import ExperimentRecord, Store, StoreError
from nasforge.trial import Trial, rank_trials

__all__ = ["write_report"]

logger = logging.getLogger("nasforge.dashboard.report")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#0f172a;background:#f4f6f9;margin:0}
main{max-width:1200px;margin:0 auto;padding:18px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
h3{font-size:14px;color:#475569;margin:16px 0 6px}.muted{color:#64748b;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px 12px;min-width:150px}
.card .k{color:#64748b;font-size:11px;text-transform:uppercase;letter-spacing:.5px}.card .v{font-size:18px;font-weight:650}
img{max-width:100%;background:#fff;border:1px solid #e2e8f0;border-radius:8px}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}
table{border-collapse:collapse;background:#fff;font-size:12.5px;width:100%}th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f8fafc}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px;word-break:break-word}
td.err{color:#b91c1c;word-break:break-word}tr.best td{background:#f0fdf4}table.kv{width:auto;min-width:360px}
.FAILED{color:#b91c1c}.SUCCEEDED{color:#15803d}.RUNNING{color:#1d4ed8}.STOPPED{color:#b45309}
"""


def _slug(name: str) -> str:
    """A file-name-safe form of an experiment name (no path separators, no leading dots)."""
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "experiment")[:80]


def _esc(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=False)
    return html.escape(text, quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value / 1e6:.2f}M"
        if abs(value) >= 1e4:
            return f"{value / 1e3:.1f}k"
        return f"{value:.4f}" if not value.is_integer() else f"{value:.0f}"
    return _esc(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        encoded = base64.b64encode(f.read()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{_esc(alt)}"></figure>'


def _plots(rec: ExperimentRecord, trials: list[Trial], detail: dict[str, Any], out_dir: str, slug: str) -> list[tuple[str, str]]:
    metric, mode = detail["metric"], detail["mode"]
    made: list[tuple[str, str]] = []

    def attempt(what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        path = os.path.join(out_dir, f"{slug}-{what}.png")
        try:
            fn(*args, path, **kwargs)
        except ValueError as exc:  # nothing to plot for this experiment
            logger.info("report of %r: no %s plot (%s)", rec.name, what, exc)
            return
        made.append((path, what.replace("_", " ")))

    title = f"{rec.name}: best {metric} so far over {len(trials)} trials"
    attempt("best_so_far", viz.plot_history, trials, metric=metric, mode=mode, title=title)
    attempt("best_over_time", viz.plot_best_over_time, trials, metric=metric, mode=mode)
    for cost in detail["cost_metrics"][:2]:
        attempt(f"metric_vs_{cost}", viz.plot_metric_vs_cost, trials, metric=metric, cost=cost, mode=mode)
    curve_metric = metric if metric in detail["report_metrics"] else (detail["report_metrics"] or [None])[0]
    if curve_metric is not None:
        attempt("curves", viz.plot_curves, trials, metric=curve_metric, ids=detail["top_trials"],
                title=f"{curve_metric} during training, top {len(detail['top_trials'])} trials")
    if detail["chosen"] and detail["chosen"]["cells"]:
        attempt("cell", viz.plot_cells, detail["chosen"]["arch"], title=f"cell of trial {detail['chosen']['trial']}")
    weights = detail.get("arch_weights")
    if weights:
        per_epoch = [e["weights"] for e in weights["epochs"] if e.get("weights")]
        if per_epoch:
            attempt("arch_weights", viz.plot_arch_weights, per_epoch, candidates=weights.get("candidates"))
    return made


def _kv_table(items: Sequence[tuple[Any, Any]]) -> str:
    rows = "".join(
        f'<tr><td class="mono">{_esc(k)}</td><td class="mono">{_esc(v) if not isinstance(v, float) else _num(v)}</td></tr>'
        for k, v in items
    )
    return f'<table class="kv">{rows}</table>'


def _section(rec: ExperimentRecord, store: Store, out_dir: str) -> tuple[str, list[str]]:
    trials = store.trials(rec.id, with_reports=True)
    d = data.experiment_detail(store, rec)
    slug = _slug(rec.name)
    plots = _plots(rec, trials, d, out_dir, slug)
    metric = d["metric"]
    counts = ", ".join(f"{v} {k.lower()}" for k, v in d["counts"].items() if v) or "none"
    b = d["budget"]
    cards = [
        ("status", d["status"]),
        ("trials", f"{d['n_trials']}" + (f" / {b['max_trials']}" if b["max_trials"] else "")),
        (f"best {metric}", _num(d["best"]["value"]) if d["best"] else "-"),
        ("strategy", d["strategy"] or "-"),
        ("space size", f"{d['space_size']:,}" if isinstance(d["space_size"], int) else "-"),
        ("elapsed", _duration(b["elapsed"])),
    ]
    parts = [f'<h2 id="{_esc(slug)}">experiment {_esc(rec.name)}</h2>']
    parts.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
        for k, v in cards) + "</div>")
    parts.append(f'<p class="muted">trials: {_esc(counts)} · metric {_esc(metric)} ({_esc(d["mode"])}imised) · '
                 f'evaluator {_esc(d["evaluator"])} · seed {_esc(d["seed"])}</p>')
    if plots:
        parts.append('<div class="plots">' + "".join(_img(p, alt) for p, alt in plots) + "</div>")
    chosen = d["chosen"]
    if chosen:
        parts.append(f"<h3>chosen architecture: trial {chosen['trial']} ({_esc(metric)} {_num(chosen['value'])})</h3>")
        parts.append(_kv_table(list(chosen["arch"].items())))
        parts.append(f'<p class="muted mono">{_esc(json.dumps(chosen["arch"]))}</p>')
    if d["tests"]:
        parts.append("<h3>test-set results</h3>")
        keys = sorted({k for t in d["tests"] for k in t["metrics"]})
        head = "".join(f"<th>{_esc(k)}</th>" for k in ["trial", "status", "protocol", *keys, "error"])
        rows = []
        for t in d["tests"]:
            cells = [
                f'<td class="num">{_esc(t["trial_id"])}</td>',
                f'<td class="{_esc(t["status"])}">{_esc(t["status"])}</td>',
                f"<td>{'retrained on train+val' if t['retrain'] else 'trained on train'}</td>",
                *(f'<td class="num">{_num(t["metrics"].get(k))}</td>' for k in keys),
                f'<td class="err">{_esc((t["error"] or "").strip().splitlines()[-1] if t["error"] else "")}</td>',
            ]
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    weights = d.get("arch_weights")
    if weights and weights.get("final"):
        parts.append("<h3>final architecture weights (one-shot)</h3>")
        cands = weights.get("candidates") or {}
        items = []
        for label, values in weights["final"].items():
            names = cands.get(label) or list(range(len(values)))
            items.append((label, ", ".join(f"{n}: {v:.3f}" for n, v in zip(names, values) if v is not None)))
        parts.append(_kv_table(items))
    parts.append("<h3>trials</h3>")
    rank = {t.id: i for i, t in enumerate(rank_trials(trials, metric=metric, mode=d["mode"]), 1)}
    best_id = chosen["trial"] if chosen else None
    rows = []
    for t in sorted(trials, key=lambda t: (rank.get(t.id, len(rank) + 1), t.id)):
        err = (t.error or "").strip().splitlines()[-1] if t.error else ""
        rows.append(
            f'<tr class="{"best" if t.id == best_id else ""}"><td class="num">{rank.get(t.id, "")}</td><td class="num">{t.id}</td>'
            f'<td class="{t.status.value}">{t.status.value}</td><td class="num">{_num(data.clean_json(t.metrics.get(metric)))}</td>'
            f'<td class="num">{_num(data.clean_json(t.metrics.get("params")))}</td><td class="num">{_duration(t.duration)}</td>'
            f'<td class="mono">{_esc(json.dumps(t.arch, separators=(",", ":")))}</td><td class="err">{_esc(err)}</td></tr>'
        )
    parts.append(f"<table><tr><th>rank</th><th>trial</th><th>status</th><th>{_esc(metric)}</th><th>params</th>"
                 f"<th>duration</th><th>arch</th><th>failure reason</th></tr>{''.join(rows)}</table>")
    return "\n".join(parts), [p for p, _ in plots]


def write_report(store_path: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None) -> list[str]:
    """Write the report of the store ``store_path`` (every experiment, or only ``name``) into ``out_dir``.

    Returns the paths written (the PNGs, then ``report.html``). The store is opened read-only.

    Example::

        write_report("runs/main/search.db", "runs/main/report")
    """
    path = os.fspath(store_path)
    if not os.path.isfile(path):
        raise StoreError(f"store file {path!r} does not exist")
    out = os.fspath(out_dir)
    with Store(path, readonly=True) as store:
        records = store.experiments()
        if name is not None:
            records = [r for r in records if r.name == name]
            if not records:
                names = ", ".join(repr(r.name) for r in store.experiments()) or "none"
                raise StoreError(f"no experiment named {name!r} in {path!r}; it holds: {names}")
        if not records:
            raise StoreError(f"{path!r} holds no experiment yet")
        os.makedirs(out, exist_ok=True)
        sections, files = [], []
        for rec in records:
            section, pngs = _section(rec, store, out)
            sections.append(section)
            files.extend(pngs)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    doc = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>nasforge report: {_esc(os.path.basename(path))}</title>"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'">'
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>nasforge report</h1><p class=\"muted\">store {_esc(os.path.abspath(path))} · written {stamp}</p>"
        + "\n".join(sections)
        + "</main></body></html>\n"
    )
    html_path = os.path.join(out, "report.html")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(doc)
    files.append(html_path)
    return files
