"""Plots of an experiment (matplotlib, drawn off-screen; no global pyplot state is touched)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nasforge.trial import Trial, TrialStatus

__all__ = ["best_so_far", "plot_history", "plot_pareto"]


def best_so_far(trials: Sequence[Trial], metric: str, mode: str = "max") -> list[tuple[int, float]]:
    """``(trial id, best value of metric up to that trial)`` for every successful trial, in id order."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    out: list[tuple[int, float]] = []
    best: float | None = None
    for t in sorted(trials, key=lambda t: t.id):
        if t.status is not TrialStatus.SUCCEEDED or metric not in t.metrics:
            continue
        value = t.metrics[metric]
        if best is None or (value > best if mode == "max" else value < best):
            best = value
        out.append((t.id, best))
    return out


def plot_history(
    trials: Sequence[Trial],
    path: str | os.PathLike,
    metric: str,
    mode: str = "max",
    title: str | None = None,
) -> str:
    """Write a PNG: every successful trial's ``metric`` (dots), the best so far (line), failures (x).

    Example::

        plot_history(exp.trials(), "runs/main/history.png", metric="val_acc")
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    trials = list(trials)
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and metric in t.metrics]
    if not ok:
        raise ValueError(f"no successful trial reports {metric!r}; nothing to plot")
    fig = Figure(figsize=(7, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter([t.id for t in ok], [t.metrics[metric] for t in ok], s=14, alpha=0.6, label="trial")
    curve = best_so_far(trials, metric, mode)
    ax.step([i for i, _ in curve], [v for _, v in curve], where="post", color="C3", linewidth=2, label="best so far")
    failed = [t.id for t in trials if t.status is TrialStatus.FAILED]
    if failed:
        low = min(t.metrics[metric] for t in ok)
        ax.scatter(failed, [low] * len(failed), marker="x", color="k", s=20, label="failed")
    values = sorted(t.metrics[metric] for t in ok)
    if mode == "max" and len(values) > 4:  # zoom on the interesting part, keep the bulk visible
        lo = values[len(values) // 5]
        hi = values[-1]
        ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric}: best so far over {len(trials)} trials")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(os.fspath(path))
    return os.fspath(path)


def plot_pareto(
    trials: Sequence[Trial],
    path: str | os.PathLike,
    objectives: Sequence[tuple[str, str]],
    title: str | None = None,
    log_x: bool = False,
) -> str:
    """Write a PNG of a two-objective search: every successful trial (dots), the Pareto front
    (highlighted, joined as a staircase) and rejected trials' measured x value (ticks on the axis).

    ``objectives`` are ``[(y_metric, mode), (x_metric, mode)]`` in the experiment's order, e.g.
    ``[("val_acc", "max"), ("params", "min")]`` plots accuracy against parameters.

    Example::

        plot_pareto(exp.trials(), "docs/pareto.png", [("val_acc", "max"), ("params", "min")], log_x=True)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from nasforge.experiment.objectives import pareto_trials

    if len(objectives) != 2:
        raise ValueError(f"plot_pareto draws exactly 2 objectives, got {list(objectives)}")
    (ym, _), (xm, _) = objectives
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and xm in t.metrics and ym in t.metrics]
    front = pareto_trials(ok, list(objectives))
    fig = Figure(figsize=(6.4, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter([t.metrics[xm] for t in ok], [t.metrics[ym] for t in ok], s=14, color="#9aa7b8", label=f"trials ({len(ok)})")
    pts = sorted((t.metrics[xm], t.metrics[ym]) for t in front)
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#c0392b", lw=1.2)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=30, color="#c0392b", zorder=3, label=f"Pareto front ({len(pts)})")
    rejected = [t.metrics[xm] for t in trials if t.status is TrialStatus.REJECTED and xm in t.metrics]
    if rejected:
        ax.plot(rejected, [ax.get_ylim()[0]] * len(rejected), "|", color="k", ms=10, label=f"rejected ({len(rejected)})")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xm)
    ax.set_ylabel(ym)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"{ym} vs {xm}")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    return os.fspath(path)
