"""Every strategy on a space of a single arch and on spaces smaller than the trial budget
(issue 10, defect 11): the experiment stops when the space is exhausted. (Each strategy exhausting
tiny spaces under ask/tell, each arch once, is part of StrategyConformance: tests/test_strategy.py.)"""

from __future__ import annotations

import inspect

import pytest

import nasforge.strategy as strategies
from nasforge import Experiment
from nasforge.evaluate import FunctionEvaluator
from nasforge.space import Categorical, Space

SPACES = {
    "one arch, two labels": Space([Categorical([7], label="a"), Categorical(["x"], label="b")]),
    "one arch, one label": Space([Categorical([7], label="a")]),
    "three archs": Space([Categorical([1, 2, 3], label="a")]),
    "four archs, one fixed label": Space([Categorical([1, 2], label="a"), Categorical([0], label="z"), Categorical([1, 2], label="b")]),
}


def _score(arch):
    return float(sum(v for v in arch.values() if isinstance(v, int)))


def _default(name):
    cls = getattr(strategies, name)
    if name == "ZeroCostWarmStart":  # a wrapper that also needs a scorer (any arch -> float)
        return cls(strategies.RegularizedEvolution(), _score, candidates=10, top_k=2)
    return cls(strategies.RegularizedEvolution()) if name in ("SuccessiveHalving", "Hyperband") else cls()


DEDUP_BY_DEFAULT = [n for n in strategies.__all__ if isinstance(c := getattr(strategies, n), type) and issubclass(c, strategies.Strategy)
                    and not inspect.isabstract(c) and n != "Random"]


@pytest.mark.parametrize("space_name", ["one arch, two labels", "three archs"])
@pytest.mark.parametrize("name", DEDUP_BY_DEFAULT)
def test_experiment_with_default_strategy_stops_when_the_space_is_exhausted(name, space_name):
    space = SPACES[space_name]
    exp = Experiment(space, _default(name), FunctionEvaluator(lambda a, ctx: _score(a), uses_model=False),
                     max_trials=10, executor="inline", progress=False, seed=0)
    summary = exp.run()
    assert summary.stop_reason == "strategy exhausted"
    assert summary.n_trials == space.size
    assert summary.counts.get("SUCCEEDED") == space.size


def test_random_with_dedup_stops_and_without_repeats_by_design():
    space = SPACES["three archs"]
    ev = FunctionEvaluator(lambda a, ctx: _score(a), uses_model=False)
    kw = dict(max_trials=10, executor="inline", progress=False, seed=0)
    assert Experiment(space, strategies.Random(dedup=True), ev, **kw).run().n_trials == 3
    assert Experiment(space, strategies.Random(), ev, **kw).run().n_trials == 3  # the default de-duplicates (issue 8)
    assert Experiment(space, strategies.Random(dedup=False), ev, **kw).run().n_trials == 10  # sampling with replacement
