"""Plots of an experiment (matplotlib, drawn off-screen; no global pyplot state is touched)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nasforge.trial import Trial, TrialStatus

__all__ = ["best_so_far", "history_figure", "plot_history"]


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


def history_figure(trials: Sequence[Trial], metric: str, mode: str = "max", title: str | None = None) -> Any:
    """The history plot as a matplotlib ``Figure`` (see :func:`plot_history`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    trials = list(trials)
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and metric in t.metrics]
    if not ok:
        raise ValueError(f"no successful trial reports {metric!r}; nothing to plot")
    stopped = [t for t in trials if t.status is TrialStatus.STOPPED and metric in t.metrics]
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    fig = Figure(figsize=(8.5, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter([t.id for t in ok], [t.metrics[metric] for t in ok], s=14, alpha=0.6, label=f"trial ({len(ok)})")
    if stopped:
        ax.scatter([t.id for t in stopped], [t.metrics[metric] for t in stopped], s=18, facecolors="none",
                   edgecolors="C1", label=f"stopped early ({len(stopped)}; last report)")
    curve = best_so_far(trials, metric, mode)
    ax.step([i for i, _ in curve], [v for _, v in curve], where="post", color="C3", linewidth=2, label="best so far")
    values = [t.metrics[metric] for t in ok] + [t.metrics[metric] for t in stopped]
    lo, hi = min(values), max(values)
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
    bottom = lo - pad
    if failed:  # drawn on a band below every score, so they never hide a result
        bottom = lo - 2.5 * pad
        ax.scatter([t.id for t in failed], [lo - 1.5 * pad] * len(failed), marker="x", color="k", s=22,
                   label=f"failed ({len(failed)})")
    ax.set_ylim(bottom, hi + pad)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.set_title(title or f"{metric}: best so far over {len(trials)} trials")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")
    fig.tight_layout()
    return fig


def plot_history(
    trials: Sequence[Trial],
    path: str | os.PathLike,
    metric: str,
    mode: str = "max",
    title: str | None = None,
) -> str:
    """Write a PNG of a search: every successful trial's ``metric`` (dots; the y-range shows them
    all), trials stopped early (hollow, at their last report), failed trials (x, on a band below
    the scores), the best so far (line), and the legend beside the plot, outside the data.

    Example::

        plot_history(exp.trials(), "runs/main/history.png", metric="val_acc")
    """
    fig = history_figure(trials, metric, mode, title)
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(os.fspath(path), bbox_inches="tight")
    return os.fspath(path)
