"""Plots of an experiment (matplotlib, drawn off-screen; no global pyplot state is touched)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nasforge.trial import Trial, TrialStatus

__all__ = ["best_so_far", "plot_history"]


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
