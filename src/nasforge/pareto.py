"""Pareto dominance, non-dominated sorting and crowding distance (NSGA-II, Deb et al. 2002).

Torch-free and numpy-only. Every function takes points as rows of objective values oriented
so that **larger is better** in every column (negate minimised objectives first, e.g. with
:func:`orient`).

Example::

    >>> pareto_front([[0.9, -100], [0.8, -10], [0.7, -50]])
    [0, 1]
    >>> non_dominated_sort([[0.9, -100], [0.8, -10], [0.7, -50]])
    [[0, 1], [2]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["crowding_distance", "dominates", "non_dominated_sort", "orient", "pareto_front", "nsga2_rank"]


def _as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None] if p.size else p.reshape(0, 1)
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (one row of objective values per point), got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("points must not contain NaN")
    return p


def orient(values: Sequence[float], modes: Sequence[str]) -> list[float]:
    """``values`` made larger-is-better: entries whose mode is ``"min"`` are negated."""
    if len(values) != len(modes):
        raise ValueError(f"{len(values)} values for {len(modes)} objectives")
    out = []
    for v, m in zip(values, modes):
        if m not in ("max", "min"):
            raise ValueError(f"objective mode must be 'max' or 'min', got {m!r}")
        out.append(float(v) if m == "max" else -float(v))
    return out


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and strictly better somewhere."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(a_ >= b_) and np.any(a_ > b_))


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices (ascending) of the non-dominated points. Duplicates of a front point are all kept."""
    p = _as_points(points)
    n = len(p)
    keep = []
    for i in range(n):
        ge = np.all(p >= p[i], axis=1)
        gt = np.any(p > p[i], axis=1)
        if not np.any(ge & gt):
            keep.append(i)
    return keep


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[list[int]]:
    """The fronts F1, F2, … (lists of indices, ascending): F1 is the Pareto front, F2 the front of
    the rest, and so on (Deb et al.'s fast non-dominated sort, O(M N²))."""
    p = _as_points(points)
    if len(p) == 0:
        return []
    ge = np.all(p[:, None, :] >= p[None, :, :], axis=2)
    gt = np.any(p[:, None, :] > p[None, :, :], axis=2)
    dom = ge & gt  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)  # how many dominate j
    fronts: list[list[int]] = []
    current = [int(i) for i in np.flatnonzero(count == 0)]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.flatnonzero(dom[i]):
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within its set (boundary points: ``inf``)."""
    p = _as_points(points)
    n, m = p.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for k in range(m):
        order = np.argsort(p[:, k], kind="stable")
        lo, hi = p[order[0], k], p[order[-1], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if hi == lo:
            continue
        gaps = (p[order[2:], k] - p[order[:-2], k]) / (hi - lo)
        dist[order[1:-1]] += gaps
    return dist


def nsga2_rank(points: Sequence[Sequence[float]] | np.ndarray) -> list[tuple[int, float]]:
    """``(front index, crowding distance)`` of every point; sort by ``(front, -crowding)`` for
    NSGA-II's crowded-comparison order (best first)."""
    p = _as_points(points)
    out: list[tuple[int, float]] = [(0, 0.0)] * len(p)
    for f, front in enumerate(non_dominated_sort(p)):
        cd = crowding_distance(p[front])
        for i, d in zip(front, cd):
            out[i] = (f, float(d))
    return out
