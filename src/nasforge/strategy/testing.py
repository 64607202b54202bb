"""A tiny in-process ask/tell driver for tests and benchmarks of strategies.

This is not the experiment loop (see :mod:`nasforge.experiment`): no processes, no store, no
time budget — just ask, evaluate a Python function, tell. Useful to check a strategy against
a tabular benchmark in milliseconds.

Example::

    >>> from nasforge.space import Categorical, Space
    >>> from nasforge.strategy import Random
    >>> space = Space([Categorical(list(range(10)), label="x")])
    >>> trials = run_ask_tell(Random(dedup=True), space, lambda a: -abs(a["x"] - 7), budget=10, seed=0)
    >>> max(t.score for t in trials)
    0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nasforge.space import Arch, Space
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial, TrialStatus

__all__ = ["run_ask_tell"]


def run_ask_tell(
    strategy: Strategy,
    space: Space,
    objective: Callable[..., Any],
    budget: int,
    seed: int | None = 0,
    concurrency: int = 1,
    steps: int | None = None,
    random_completion: bool = False,
    setup: bool = True,
    first_id: int = 0,
    on_tell: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Drive ``strategy`` for at most ``budget`` trials; returns the trials in ask order.

    ``objective(arch)`` returns the score (larger is better), or None / NaN / raises for a
    failed trial. With ``steps``, ``objective(arch, step)`` is the score after ``step`` (1 …
    ``steps``) units of training: each step is reported to ``strategy.on_report`` and the trial
    is STOPPED (score = its last report) when the strategy says so; ``trial.metrics["steps"]``
    counts the steps it ran. Up to ``concurrency`` trials are in flight; they finish in ask
    order, or in a seeded random order with ``random_completion``. ``setup=False`` continues
    a strategy already set up (e.g. restored from a state dict).
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget!r}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    if setup:
        strategy.setup(space, seed)
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    running: list[Trial] = []
    exhausted = False
    while True:
        while not exhausted and len(running) < concurrency and len(trials) < budget:
            arch = strategy.ask()
            if arch is None:
                exhausted = True
                break
            t = Trial(id=first_id + len(trials), arch=dict(arch), status=TrialStatus.RUNNING)
            trials.append(t)
            running.append(t)
        if not running:
            break
        t = running.pop(int(rng.integers(len(running))) if random_completion else 0)
        _evaluate(strategy, t, objective, steps)
        strategy.tell(t)
        if on_tell is not None:
            on_tell(t)
        exhausted = False  # a new result may unblock a strategy that was waiting
        if len(trials) >= budget and not running:
            break
    return trials


def _ok(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def _evaluate(strategy: Strategy, t: Trial, objective: Callable[..., Any], steps: int | None) -> None:
    arch: Arch = t.arch
    try:
        if steps is None:
            score = objective(arch)
            ran = None
        else:
            score, ran = None, 0
            for step in range(1, steps + 1):
                score = objective(arch, step)
                ran = step
                if not _ok(score):
                    break
                t.reports.append((step, {"score": float(score)}))
                if strategy.on_report(t, step, float(score)):
                    t.status = TrialStatus.STOPPED
                    break
    except Exception as exc:  # noqa: BLE001 - a failing objective is a failed trial
        t.status, t.error, t.score = TrialStatus.FAILED, repr(exc), None
        return
    if not _ok(score):
        t.status, t.score = TrialStatus.FAILED, None
        return
    t.score = float(score)
    t.metrics = {"score": float(score)} if ran is None else {"score": float(score), "steps": ran}
    if t.status != TrialStatus.STOPPED:
        t.status = TrialStatus.SUCCEEDED
