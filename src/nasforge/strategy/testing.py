"""Testing tools for strategies: :func:`run_ask_tell`, a tiny in-process ask/tell driver for tests
and benchmarks, and :class:`StrategyConformance`, the strategy contract as a reusable pytest class.

The driver is not the experiment loop (see :mod:`nasforge.experiment`): no processes, no store, no
time budget — just ask, evaluate a Python function, tell. Useful to check a strategy against
a tabular benchmark in milliseconds.

Example::

    >>> from nasforge.space import Categorical, Space
    >>> from nasforge.strategy import Random
    >>> space = Space([Categorical(list(range(10)), label="x")])
    >>> trials = run_ask_tell(Random(dedup=True), space, lambda a: -abs(a["x"] - 7), budget=10, seed=0)
    >>> max(t.score for t in trials)
    0

To check a new strategy, subclass the conformance class in a test file (pytest collects it)::

    from nasforge.strategy.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        optimum_budget = (100, (0, 1), 2)  # trials, seeds, seeds that must find the toy optimum

        def make_strategy(self):
            return MyStrategy()
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nasforge.space import Arch, Categorical, Space, arch_key
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial, TrialStatus

__all__ = ["StrategyConformance", "run_ask_tell", "toy_score", "toy_space"]


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
    while True:
        while len(running) < concurrency and len(trials) < budget:
            arch = strategy.ask()
            if arch is None:
                break  # nothing to propose now: asked again after the next result
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
    return trials


def _ok(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def _evaluate(strategy: Strategy, t: Trial, objective: Callable[..., Any], steps: int | None) -> None:
    try:
        if steps is None:
            score = objective(t.arch)
            ran = None
        else:
            score, ran = None, 0
            for step in range(1, steps + 1):
                score = objective(t.arch, step)
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


# -- the strategy contract as a pytest class ---------------------------------------------------------
_TARGET = {"a": 3, "b": 1, "c": 4, "d": 2}
_WEIGHTS = {"a": 1.0, "b": 0.8, "c": 0.6, "d": 0.4}


def toy_space() -> Space:
    """Four labels of five values (625 archs)."""
    return Space([Categorical(list(range(5)), label=label) for label in _TARGET])


def toy_score(arch: Arch) -> float:
    """Unique optimum 0.3 at a=3, b=1, c=4, d=2; mostly separable with a small interaction."""
    s = -sum(w * abs(arch[k] - _TARGET[k]) for k, w in _WEIGHTS.items())
    return s + 0.3 if arch["a"] == _TARGET["a"] and arch["b"] == _TARGET["b"] else s


def flaky_score(arch: Arch) -> float | None:
    """:func:`toy_score`, failing (None) deterministically on a fifth of the toy space."""
    return None if (arch["a"] + 2 * arch["c"]) % 5 == 0 else toy_score(arch)


def _tiny_spaces() -> dict[str, Space]:
    return {
        "one arch, two labels": Space([Categorical([7], label="a"), Categorical(["x"], label="b")]),
        "one arch, one label": Space([Categorical([7], label="a")]),
        "three archs": Space([Categorical([1, 2, 3], label="a")]),
        "four archs, one fixed label": Space([Categorical([1, 2], label="a"), Categorical([0], label="z"), Categorical([1, 2], label="b")]),
    }


def _drive(strategy: Strategy, pending: list[Trial], n_events: int, tid: int, log: list[Arch]) -> int:
    """Fill up to 2 running trials and finish the oldest, ``n_events`` times; returns the next trial id."""
    for _ in range(n_events):
        while len(pending) < 2 and (arch := strategy.ask()) is not None:
            log.append(arch)
            pending.append(Trial(id=tid, arch=arch, status=TrialStatus.RUNNING))
            tid += 1
        if not pending:
            break
        t = pending.pop(0)
        for step in (1, 3, 9):  # reports, for the multi-fidelity wrappers
            if strategy.on_report(t, step, toy_score(t.arch) * (1 + 1 / step)):
                t.status = TrialStatus.STOPPED
                break
        t.score = flaky_score(t.arch)
        if t.status is not TrialStatus.STOPPED:
            t.status = TrialStatus.SUCCEEDED if t.score is not None else TrialStatus.FAILED
        strategy.tell(t)
    return tid


class StrategyConformance:
    """The contract every strategy keeps, as a pytest class: subclass it as ``Test…`` in a test file
    and define :meth:`make_strategy` (a fresh, unconfigured-by-setup strategy per call).

    Checks: the same seed gives the same proposals (and another seed others); concurrent trials
    with failures and random completion order; a JSON state round trip with trials still running
    gives the same future proposals; the toy optimum (:func:`toy_score`) is found within
    ``optimum_budget``; tiny spaces (one arch, three archs, a one-value label) are exhausted without
    error, each network once. Class attributes tune it:

    * ``optimum_budget = (trials, seeds, hits)``: ``hits`` of the ``seeds`` must find the optimum
      within ``trials``; None skips the check (baselines such as random search);
    * ``dedup = True``: the strategy never proposes a network twice (False: with replacement);
    * ``seed_sensitive = True``: another seed gives other proposals.

    Importing this module does not import pytest; the tests import it when they skip.
    """

    optimum_budget: tuple[int, tuple[int, ...], int] | None = (100, (0, 1), 2)
    dedup: bool = True
    seed_sensitive: bool = True

    def make_strategy(self) -> Strategy:
        raise NotImplementedError(f"{type(self).__name__} must define make_strategy() returning a new strategy")

    def test_same_seed_same_proposals(self) -> None:
        a, b, c = ([t.arch for t in run_ask_tell(self.make_strategy(), toy_space(), toy_score, 30, seed)] for seed in (7, 7, 8))
        assert a == b, "two runs with seed 7 proposed different archs"
        assert a != c or not self.seed_sensitive, "seeds 7 and 8 proposed the same archs"

    def test_concurrency_and_failures(self) -> None:
        space = toy_space()
        trials = run_ask_tell(self.make_strategy(), space, flaky_score, budget=80, seed=1, concurrency=4, random_completion=True)
        assert len(trials) >= 40, f"only {len(trials)} proposals: a strategy may wait for results but must keep proposing"
        keys = [arch_key(t.arch) for t in trials]
        assert len(keys) == len(set(keys)) or not self.dedup, "a de-duplicating strategy proposed an arch twice"
        for t in trials:
            space.validate(t.arch)
        assert any(t.status is TrialStatus.FAILED for t in trials)

    def test_state_round_trip_gives_same_future_proposals(self) -> None:
        space, a, b = toy_space(), self.make_strategy(), self.make_strategy()
        a.setup(space, 11)
        pending: list[Trial] = []
        tid = _drive(a, pending, 20, 0, [])
        for _ in range(20):  # save at a moment with trials still running
            if pending:
                break
            tid = _drive(a, pending, 1, tid, [])
        assert pending, "the save should happen with trials still running"
        state = json.loads(json.dumps(a.state_dict()))
        b.setup(space, 11)
        b.load_state_dict(state)
        pending_b = [Trial(id=t.id, arch=dict(t.arch), status=t.status) for t in pending]
        future_a: list[Arch] = []
        future_b: list[Arch] = []
        _drive(a, pending, 20, tid, future_a)
        _drive(b, pending_b, 20, tid, future_b)
        assert future_a and future_a == future_b, "the restored strategy proposes differently"

    def test_finds_toy_optimum(self) -> None:
        if self.optimum_budget is None:
            import pytest

            pytest.skip(f"{type(self).__name__}.optimum_budget is None")
        budget, seeds, required = self.optimum_budget
        found = 0
        for seed in seeds:
            trials = run_ask_tell(self.make_strategy(), toy_space(), toy_score, budget=budget, seed=seed)
            found += max(t.score for t in trials if t.score is not None) == toy_score(_TARGET)
        assert found >= required, f"found the optimum with {found} of seeds {seeds} within {budget} trials; {required} required"

    def test_exhausts_tiny_spaces(self) -> None:
        for name, space in _tiny_spaces().items():
            for concurrency in (1, 3):
                score = lambda a: float(sum(v for v in a.values() if isinstance(v, int)))  # noqa: E731
                trials = run_ask_tell(self.make_strategy(), space, score, budget=12, seed=0, concurrency=concurrency)
                keys = [arch_key(t.arch) for t in trials]
                for t in trials:
                    space.validate(t.arch)
                if self.dedup:
                    assert len(keys) == len(set(keys)) == space.size, f"{name}, concurrency {concurrency}: {len(keys)} proposals"
