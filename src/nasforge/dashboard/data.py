"""What the dashboard and the static report show, computed from a store as plain JSON data.

No web framework and no plotting here: the web API (:mod:`nasforge.dashboard.app`) serves these
dicts as JSON, the report (:mod:`nasforge.dashboard.report`) draws them with matplotlib. Every
function only reads the store.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from nasforge.store import ExperimentRecord, Store
from nasforge.trial import ExperimentStatus, Trial, TrialStatus, rank_trials

__all__ = [
    "arch_weights",
    "best_over_time",
    "best_over_trials",
    "cells_of",
    "clean_json",
    "cost_metrics",
    "experiment_detail",
    "experiment_status",
    "experiment_summary",
    "find_experiment",
    "pareto_front",
    "report_counts",
    "trial_reports",
    "trial_rows",
]

COST_KEYS = ("params", "flops", "latency", "latency_ms", "macs")


def clean_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN / inf)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def find_experiment(store: Store, key: str) -> ExperimentRecord | None:
    """The experiment named ``key``; else, when ``key`` is a number, the one with that id."""
    rec = store.experiment(key)
    if rec is None and key.isdigit():
        rec = next((r for r in store.experiments() if r.id == int(key)), None)
    return rec


def experiment_status(store: Store, rec: ExperimentRecord, trials: Sequence[Trial]) -> dict[str, Any]:
    """``{"status": "running" | "interrupted" | "done" | …, "owner": dict | None, "source": …}``.

    Uses the store's owner information (``Store.live_status`` / ``Store.owner``) where the store
    has it; otherwise the status the experiment loop recorded (a process killed hard may still
    read "running" there).
    """
    owner = None
    with contextlib.suppress(Exception):  # the view must not fail on an older / newer store
        owner = store.owner(rec.name)
    with contextlib.suppress(Exception):
        status = str(store.live_status(rec.name))
        return {"status": status, "owner": clean_json(owner), "source": "owner"}
    return {"status": rec.status, "owner": clean_json(owner), "source": "recorded"}


def _metric_of(t: Trial, metric: str) -> float | None:
    return _number(t.metrics.get(metric))


def best_trial(trials: Sequence[Trial], metric: str, mode: str) -> Trial | None:
    return next(iter(rank_trials(trials, 1, metric=metric, mode=mode)), None)


def _best_so_far(rows: list[tuple[Any, int, float]], mode: str, key: str) -> list[dict[str, Any]]:
    """``rows`` of ``(order, trial id, value)`` in order, each with the best value so far."""
    out = []
    best: float | None = None
    for order, tid, v in sorted(rows):
        if best is None or (v > best if mode == "max" else v < best):
            best = v
        out.append({"trial": tid, **({key: order} if key else {}), "value": v, "best": best})
    return out


def best_over_trials(trials: Sequence[Trial], metric: str, mode: str) -> list[dict[str, Any]]:
    """Per successful trial in id order: its value and the best value so far."""
    return _best_so_far([(t.id, t.id, v) for t in trials
                         if t.status is TrialStatus.SUCCEEDED and (v := _metric_of(t, metric)) is not None], mode, "")


def best_over_time(trials: Sequence[Trial], metric: str, mode: str) -> list[dict[str, Any]]:
    """Per successful trial in order of finishing: seconds since the first trial started, value, best so far."""
    first = min((t.started for t in trials if t.started is not None), default=None)
    if first is None:
        return []
    return _best_so_far([(float(t.finished) - first, t.id, v) for t in trials if t.status is TrialStatus.SUCCEEDED
                         and t.finished is not None and (v := _metric_of(t, metric)) is not None], mode, "time")


def cost_metrics(trials: Sequence[Trial]) -> list[str]:
    """The cost measures (params, FLOPs, latency…) that some successful trial reports."""
    have = {k for t in trials if t.status is TrialStatus.SUCCEEDED for k, v in t.metrics.items() if _number(v) is not None}
    return [k for k in COST_KEYS if k in have]


def pareto_front(points: Sequence[tuple[float, float, int]], mode: str) -> list[int]:
    """Ids of the points ``(cost, value, id)`` no other point beats on both (lower cost, better value)."""
    sign = 1.0 if mode == "max" else -1.0
    ordered = sorted(points, key=lambda p: (p[0], -sign * p[1], p[2]))
    front: list[int] = []
    best: float | None = None
    for _cost, value, pid in ordered:
        if best is None or sign * value > best:
            front.append(pid)
            best = sign * value
    return front


def metric_vs_cost(trials: Sequence[Trial], metric: str, mode: str, cost: str) -> dict[str, Any]:
    pts = []
    for t in trials:
        v, c = _metric_of(t, metric), _number(t.metrics.get(cost))
        if t.status is TrialStatus.SUCCEEDED and v is not None and c is not None:
            pts.append((c, v, t.id))
    front = set(pareto_front(pts, mode))
    return {
        "cost": cost,
        "points": [{"trial": i, "cost": c, "value": v, "pareto": i in front} for c, v, i in sorted(pts, key=lambda p: p[2])],
        "front": sorted(({"trial": i, "cost": c, "value": v} for c, v, i in pts if i in front), key=lambda p: p["cost"]),
    }


_OP = re.compile(r"^(?:(?P<prefix>.+)\.)?op_(?P<node>\d+)_(?P<slot>\d+)$")


def cells_of(arch: dict[str, Any]) -> list[dict[str, Any]]:
    """The cell DAGs in an arch (labels ``[cell.]op_<node>_<k>`` and ``[cell.]input_<node>_<k>``).

    Each: ``{"name", "inputs": [node ids of the cell's inputs], "nodes": [node ids], "edges":
    [{"from", "to", "op"}]}``. Without ``input_`` labels a cell is of the NAS-Bench-201 form
    (node ``i``'s op ``k`` reads state ``k``).
    """
    groups: dict[str, dict[tuple[int, int], Any]] = {}
    for label, value in arch.items():
        m = _OP.match(str(label))
        if m:
            groups.setdefault(m.group("prefix") or "", {})[(int(m.group("node")), int(m.group("slot")))] = value
    cells = []
    for prefix, ops in groups.items():
        if len(ops) < 2:
            continue
        dot = f"{prefix}." if prefix else ""
        first = min(node for node, _ in ops)
        last = max(node for node, _ in ops)
        edges = []
        for (node, slot), op in sorted(ops.items()):
            src = arch.get(f"{dot}input_{node}_{slot}", slot)
            if isinstance(src, list) and len(src) == 1:
                src = src[0]
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node:
                continue
            edges.append({"from": src, "to": node, "op": op})
        if edges:
            cells.append({
                "name": prefix or "cell",
                "inputs": list(range(first)),
                "nodes": list(range(first, last + 1)),
                "edges": edges,
            })
    return cells


def arch_weights(rec: ExperimentRecord) -> dict[str, Any] | None:
    """A one-shot run's architecture weights: per epoch where recorded, else the final ones.

    Read from the strategy state that :class:`~nasforge.oneshot.OneShotStrategy` stores:
    ``history`` (one dict per epoch; an ``arch_probabilities`` / ``probabilities`` / ``alpha``
    entry in it gives the weights of that epoch) and ``arch_probabilities`` (at the end). Weights
    are ``{label: [weight per candidate]}`` or ``{label: {candidate: weight}}``; the result has
    ``{label: [weights]}`` and the candidates' names in ``candidates``.
    """
    state = rec.strategy_state or {}
    history = state.get("history")
    final = state.get("arch_probabilities")
    if not isinstance(history, list) and not isinstance(final, dict):
        return None
    candidates: dict[str, list[Any]] = {}
    for c in (rec.config.get("space") or []):
        if isinstance(c, dict) and "label" in c and isinstance(c.get("values"), list):
            candidates[str(c["label"])] = list(c["values"])
    epochs: list[dict[str, Any]] = []
    for i, record in enumerate(history if isinstance(history, list) else []):
        if not isinstance(record, dict):
            continue
        probs = next((record[k] for k in ("arch_probabilities", "probabilities", "alpha") if isinstance(record.get(k), dict)), None)
        metrics = {k: _number(v) for k, v in record.items() if _number(v) is not None and k != "epoch"}
        epoch = _number(record.get("epoch"))
        epochs.append({
            "epoch": int(epoch) if epoch is not None else i + 1,
            "metrics": metrics,
            "weights": _weights(probs, candidates) if probs is not None else None,
        })
    return clean_json({
        "trainer": state.get("trainer"),
        "epochs": epochs,
        "final": _weights(final, candidates) if isinstance(final, dict) else None,
        "candidates": candidates,
    })


def _weights(probs: dict[str, Any], candidates: dict[str, list[Any]]) -> dict[str, list[float | None]]:
    """``{label: [weights]}`` from lists or ``{candidate: weight}`` dicts (whose keys name the candidates)."""
    out = {}
    for label, values in probs.items():
        if isinstance(values, dict):
            candidates[str(label)] = list(values.keys())
            values = list(values.values())
        if isinstance(values, (list, tuple)):
            out[str(label)] = [_number(v) for v in values]
    return out


def _elapsed(trials: Sequence[Trial], running: bool) -> float | None:
    starts = [t.started for t in trials if t.started is not None]
    if not starts:
        return None
    ends = [t.finished for t in trials if t.finished is not None] + starts
    return max(ends + [time.time()] if running else ends) - min(starts)


def experiment_summary(store: Store, rec: ExperimentRecord, trials: Sequence[Trial] | None = None) -> dict[str, Any]:
    """Status, counts, budget used, best so far, strategy and space size of one experiment."""
    if trials is None:
        trials = store.trials(rec.id, with_reports=False)
    cfg = rec.config
    metric, mode = str(cfg.get("metric", "score")), str(cfg.get("mode", "max"))
    counts = {s.value: sum(t.status is s for t in trials) for s in TrialStatus}
    status = experiment_status(store, rec, trials)
    best = best_trial(trials, metric, mode)
    n_reports = store._db.execute("SELECT COUNT(*) FROM reports WHERE experiment_id = ?", (rec.id,)).fetchone()[0]
    n_tests = store._db.execute("SELECT COUNT(*) FROM tests WHERE experiment_id = ?", (rec.id,)).fetchone()[0]
    max_trials = cfg.get("max_trials")
    return clean_json({
        "id": rec.id,
        "name": rec.name,
        "status": status["status"],
        "owner": status["owner"],
        "status_source": status["source"],
        "metric": metric,
        "mode": mode,
        "strategy": cfg.get("strategy"),
        "strategy_repr": cfg.get("strategy_repr"),
        "evaluator": cfg.get("evaluator"),
        "model_space": cfg.get("model_space"),
        "executor": cfg.get("executor"),
        "seed": cfg.get("seed"),
        "space_size": cfg.get("space_size"),
        "space_labels": len(cfg.get("space") or []),
        "counts": counts,
        "n_trials": len(trials),
        "budget": {
            "max_trials": max_trials,
            "max_time": cfg.get("max_time"),
            "trials_used": len(trials),
            "trials_fraction": (len(trials) / max_trials) if isinstance(max_trials, int) and max_trials > 0 else None,
            "elapsed": _elapsed(trials, status["status"] == ExperimentStatus.RUNNING),
        },
        "best": {"trial": best.id, "value": best.metrics.get(metric), "arch": best.arch} if best else None,
        "created": rec.created,
        "updated": rec.updated,
        "oneshot": cfg.get("strategy") == "OneShotStrategy" or arch_weights(rec) is not None,
        # changes whenever anything the page shows changes: the page polls it to update live
        "revision": f"{rec.updated:.6f}:{len(trials)}:{sum(1 for t in trials if t.status.finished)}:{n_reports}:{n_tests}:{status['status']}",
    })


def report_counts(store: Store, exp_id: int) -> dict[int, int]:
    """How many intermediate reports each trial of an experiment has (without loading them)."""
    rows = store._db.execute(
        "SELECT trial_id, COUNT(*) FROM reports WHERE experiment_id = ? GROUP BY trial_id", (exp_id,)
    ).fetchall()
    return {int(t): int(n) for t, n in rows}


def trial_rows(
    trials: Sequence[Trial], status: str | None = None, n_reports: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    """The trials table: id, status, arch, metrics, params / FLOPs, times, duration, error, and the
    number of reports (``n_reports``, from :func:`report_counts` when the trials were loaded without them)."""
    if status is not None:
        wanted = {s.strip().upper() for s in status.split(",") if s.strip()}
        valid = {s.value for s in TrialStatus}
        bad = sorted(wanted - valid)
        if bad:
            raise ValueError(f"unknown trial status {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
        trials = [t for t in trials if t.status.value in wanted]
    rows = []
    for t in trials:
        rows.append({
            "id": t.id,
            "status": t.status.value,
            "arch": t.arch,
            "metrics": t.metrics,
            "score": t.score,
            "params": _number(t.metrics.get("params")),
            "flops": _number(t.metrics.get("flops")),
            "started": t.started,
            "finished": t.finished,
            "duration": t.duration,
            "worker": t.worker,
            "error": t.error,
            "n_reports": n_reports.get(t.id, 0) if n_reports is not None else len(t.reports),
        })
    return clean_json(rows)


def trial_reports(trials: Sequence[Trial], ids: Sequence[int]) -> dict[str, Any]:
    """The intermediate reports ``[{step, metrics}]`` of the trials with the given ids."""
    by_id = {t.id: t for t in trials}
    return clean_json({
        str(i): {"status": t.status.value,
                 "reports": [{"step": s, "metrics": m} for s, m in t.reports]}
        for i in ids if (t := by_id.get(i)) is not None
    })


def experiment_detail(store: Store, rec: ExperimentRecord) -> dict[str, Any]:
    """Everything of one experiment but the trials table: summary, plots' data, chosen arch, tests."""
    trials = store.trials(rec.id, with_reports=True)
    summary = experiment_summary(store, rec, trials)
    metric, mode = summary["metric"], summary["mode"]
    best = best_trial(trials, metric, mode)
    costs = cost_metrics(trials)
    numeric = (k for t in trials for _, m in t.reports for k, v in m.items()
               if _number(v) is not None)
    report_keys = dict.fromkeys(str(k) for k in numeric)
    tests = [r.to_dict() for r in store.tests(rec.id)]
    chosen = {
        "trial": best.id,
        "value": best.metrics.get(metric),
        "metrics": best.metrics,
        "arch": best.arch,
        "cells": cells_of(best.arch),
        "tests": [r for r in tests if r.get("trial_id") == best.id],
    } if best is not None else None
    return clean_json({
        **summary,
        "config": rec.config,
        "best_over_trials": best_over_trials(trials, metric, mode),
        "best_over_time": best_over_time(trials, metric, mode),
        "failed_trials": [t.id for t in trials if t.status is TrialStatus.FAILED],
        "cost_metrics": costs,
        "metric_vs_cost": {c: metric_vs_cost(trials, metric, mode, c) for c in costs},
        "report_metrics": list(report_keys),
        "top_trials": [t.id for t in rank_trials(trials, 5, metric=metric, mode=mode)],
        "chosen": chosen,
        "tests": tests,
        "arch_weights": arch_weights(rec),
    })
