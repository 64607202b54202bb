"""Plots of an experiment (matplotlib, drawn off-screen; no global pyplot state is touched)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nasforge.trial import Trial, TrialStatus, check_mode

__all__ = [
    "best_so_far",
    "history_figure",
    "plot_arch_weights",
    "plot_best_over_time",
    "plot_cells",
    "plot_curves",
    "plot_history",
    "plot_metric_vs_cost",
    "plot_pareto",
]


def _figure(size: tuple[float, float] = (7, 4), dpi: int = 120):  # noqa: ANN202 - matplotlib types stay lazy
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike, **savefig: Any) -> str:  # noqa: ANN001
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    fig.savefig(os.fspath(path), **savefig)
    return os.fspath(path)


def _finish(ax, xlabel: str, ylabel: str, title: str, **legend: Any) -> None:  # noqa: ANN001
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(**legend)


def _integer_x(ax) -> None:  # noqa: ANN001
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def best_so_far(trials: Sequence[Trial], metric: str, mode: str = "max") -> list[tuple[int, float]]:
    """``(trial id, best value of metric up to that trial)`` for every successful trial, in id order."""
    from nasforge.dashboard.data import best_over_trials

    check_mode(mode)
    return [(p["trial"], p["best"]) for p in best_over_trials(trials, metric, mode)]


def history_figure(trials: Sequence[Trial], metric: str, mode: str = "max", title: str | None = None) -> Any:
    """The history plot as a matplotlib ``Figure`` (see :func:`plot_history`)."""
    check_mode(mode)
    trials = list(trials)
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and metric in t.metrics]
    if not ok:
        raise ValueError(f"no successful trial reports {metric!r}; nothing to plot")
    stopped = [t for t in trials if t.status is TrialStatus.STOPPED and metric in t.metrics]
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    fig = _figure((8.5, 4))
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
    if failed:  # drawn on a band below every score, so they never hide a result
        ax.scatter([t.id for t in failed], [lo - 1.5 * pad] * len(failed), marker="x", color="k", s=22,
                   label=f"failed ({len(failed)})")
    ax.set_ylim(lo - (2.5 * pad if failed else pad), hi + pad)
    _finish(ax, "trial", f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)",
            title or f"{metric}: best so far over {len(trials)} trials",
            loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")
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
    return _save(history_figure(trials, metric, mode, title), path, bbox_inches="tight")


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
    from nasforge.experiment.objectives import pareto_trials

    if len(objectives) != 2:
        raise ValueError(f"plot_pareto draws exactly 2 objectives, got {list(objectives)}")
    (ym, _), (xm, _) = objectives
    ok = [t for t in trials if t.status is TrialStatus.SUCCEEDED and xm in t.metrics and ym in t.metrics]
    front = pareto_trials(ok, list(objectives))
    fig = _figure((6.4, 4.2), dpi=110)
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
    _finish(ax, xm, ym, title or f"{ym} vs {xm}", loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_best_over_time(
    trials: Sequence[Trial], path: str | os.PathLike, metric: str, mode: str = "max", title: str | None = None
) -> str:
    """Write a PNG: each successful trial's ``metric`` at the minute it finished and the best so far.

    Example::

        plot_best_over_time(exp.trials(), "report/best_over_time.png", metric="val_acc")
    """
    from nasforge.dashboard.data import best_over_time

    check_mode(mode)
    points = best_over_time(list(trials), metric, mode)
    if not points:
        raise ValueError(f"no successful trial reports {metric!r}; nothing to plot")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    minutes = [p["time"] / 60 for p in points]
    ax.scatter(minutes, [p["value"] for p in points], s=14, alpha=0.6, label="trial")
    ax.step(minutes, [p["best"] for p in points], where="post", color="C3", linewidth=2, label="best so far")
    _finish(ax, "minutes since the first trial started", metric, title or f"{metric}: best so far over time",
            loc="lower right" if mode == "max" else "upper right")
    return _save(fig, path)


def plot_metric_vs_cost(
    trials: Sequence[Trial],
    path: str | os.PathLike,
    metric: str,
    cost: str = "params",
    mode: str = "max",
    title: str | None = None,
) -> str:
    """Write a PNG: ``metric`` against a cost measure (``params``, ``flops``…) of every successful
    trial, with the Pareto front (no other trial is cheaper *and* better) marked.

    Example::

        plot_metric_vs_cost(exp.trials(), "report/cost.png", metric="val_acc", cost="params")
    """
    from nasforge.dashboard.data import metric_vs_cost

    check_mode(mode)
    data = metric_vs_cost(list(trials), metric, mode, cost)
    if not data["points"]:
        raise ValueError(f"no successful trial reports both {metric!r} and {cost!r}; nothing to plot")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    rest = [p for p in data["points"] if not p["pareto"]]
    ax.scatter([p["cost"] for p in rest], [p["value"] for p in rest], s=14, alpha=0.5, label="trial")
    front = data["front"]
    ax.step([p["cost"] for p in front], [p["value"] for p in front], where="post", color="C2", linestyle="--", linewidth=1.5)
    ax.scatter([p["cost"] for p in front], [p["value"] for p in front], s=36, color="C2", zorder=3,
               label=f"Pareto front ({len(front)})")
    costs = [p["cost"] for p in data["points"]]
    if min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    _finish(ax, cost, metric, title or f"{metric} vs {cost}", loc="lower right" if mode == "max" else "upper right")
    return _save(fig, path)


def plot_curves(
    trials: Sequence[Trial], path: str | os.PathLike, metric: str, ids: Sequence[int] | None = None, title: str | None = None
) -> str:
    """Write a PNG: the intermediate ``metric`` (e.g. ``val_acc`` per epoch) of the given trials
    (default: every trial that reported it, at most 10)."""
    chosen = [t for t in trials if (ids is None or t.id in ids) and any(metric in m for _, m in t.reports)]
    if ids is None:
        chosen = chosen[:10]
    if not chosen:
        raise ValueError(f"no selected trial reported {metric!r} during training; nothing to plot")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for t in chosen:
        steps = [(s, m[metric]) for s, m in t.reports if metric in m]
        ax.plot([s for s, _ in steps], [v for _, v in steps], marker="o", markersize=3, label=f"trial {t.id}")
    _integer_x(ax)
    _finish(ax, "step (epoch)", metric, title or f"{metric} during training", fontsize=8, ncol=2)
    return _save(fig, path)


def plot_cells(arch: dict, path: str | os.PathLike, title: str | None = None) -> str:
    """Write a PNG drawing of the cell DAG(s) of a cell-space arch (labels ``[cell.]op_<node>_<k>``,
    optionally ``[cell.]input_<node>_<k>``): nodes left to right, each edge labelled with its op.

    Example::

        plot_cells({"op_1_0": "conv_3x3", "op_2_0": "skip_connect", ...}, "report/cell.png")
    """
    from matplotlib.patches import FancyArrowPatch

    from nasforge.dashboard.data import cells_of

    cells = cells_of(dict(arch))
    if not cells:
        raise ValueError("the arch has no cell (labels of the form 'op_<node>_<k>' or '<cell>.op_<node>_<k>'); nothing to draw")
    width = max(len(c["inputs"]) + len(c["nodes"]) for c in cells)
    fig = _figure((max(6.0, 1.6 * width), 2.6 * len(cells)))
    ops = sorted({str(e["op"]) for c in cells for e in c["edges"]})
    colors = {op: f"C{i % 10}" for i, op in enumerate(ops)}
    for row, cell in enumerate(cells):
        ax = fig.add_subplot(len(cells), 1, row + 1)
        order = cell["inputs"] + cell["nodes"]
        x = {node: i for i, node in enumerate(order)}
        for e in cell["edges"]:
            a, b = x[e["from"]], x[e["to"]]
            span = b - a
            rad = 0.0 if span <= 1 else -0.35
            none = str(e["op"]).lower() in ("none", "zero")
            color = "0.75" if none else colors[str(e["op"])]
            ax.add_patch(FancyArrowPatch((a, 0), (b, 0), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                         mutation_scale=12, color=color, linewidth=1.0 if none else 1.8,
                                         linestyle="--" if none else "-", shrinkA=14, shrinkB=14))
            ax.text((a + b) / 2, 0.07 if span <= 1 else abs(rad) * span / 2 + 0.02, str(e["op"]), ha="center",
                    va="bottom", fontsize=8, color="0.5" if none else color,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
        for node, i in x.items():
            ax.scatter([i], [0], s=520, color="0.88" if node in cell["inputs"] else "white", edgecolors="0.2", zorder=3)
            ax.text(i, 0, str(node), ha="center", va="center", fontsize=10, fontweight="bold", zorder=4)
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_ylim(-0.35, max(0.45, 0.2 + 0.2 * (len(order) - 1)))
        ax.set_axis_off()
        ax.set_title(f"cell {cell['name']}" if len(cells) > 1 or cell["name"] != "cell" else (title or "cell"), fontsize=10)
    return _save(fig, path)


def plot_arch_weights(
    epochs: Sequence[dict], path: str | os.PathLike, candidates: dict | None = None, title: str | None = None
) -> str:
    """Write a PNG of a one-shot run's architecture weights over epochs: one panel per label, one
    line per candidate. ``epochs``: ``[{label: [weight per candidate]}, ...]`` in epoch order;
    ``candidates``: optional ``{label: [candidate names]}``."""
    epochs = [e for e in epochs if e]
    if not epochs:
        raise ValueError("no epoch holds architecture weights; nothing to plot")
    labels = list(epochs[-1])
    cols = min(3, len(labels))
    rows = -(-len(labels) // cols)
    fig = _figure((4.2 * cols, 2.8 * rows))
    for i, label in enumerate(labels):
        ax = fig.add_subplot(rows, cols, i + 1)
        n = len(epochs[-1][label])
        names = list((candidates or {}).get(label) or range(n))
        for k in range(n):
            xs = [j + 1 for j, e in enumerate(epochs) if label in e and k < len(e[label]) and e[label][k] is not None]
            ys = [e[label][k] for e in epochs if label in e and k < len(e[label]) and e[label][k] is not None]
            ax.plot(xs, ys, marker="o", markersize=2.5, label=str(names[k]) if k < len(names) else str(k))
        _integer_x(ax)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
