"""Zero-cost proxies (nasforge.evaluate.proxies), the proxy warm start and proxy features."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nasforge.benchmarks.nasbench201 import (  # noqa: E402
    LABELS,
    NasBench201Space,
    NasBench201Table,
    nasbench201_space,
)
from nasforge.evaluate.proxies import DATA_FREE, PROXIES, ProxyScorer, ZeroCostEvaluator, score  # noqa: E402
from nasforge.experiment import Experiment  # noqa: E402
from nasforge.strategy import PredictorBased, RegularizedEvolution, ZeroCostWarmStart  # noqa: E402
from nasforge.strategy.testing import run_ask_tell  # noqa: E402

CONV = {label: "nor_conv_3x3" for label in LABELS}
POOL = {label: "avg_pool_3x3" for label in LABELS}


@pytest.fixture(scope="module")
def space():
    return NasBench201Space(C=4, N=1, num_classes=5)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 5, (8,), generator=g)


@pytest.mark.parametrize("name", list(PROXIES))
def test_proxy_finite_deterministic_and_orders_conv_above_pool(name, space, batch):
    """All-3x3-conv cell (93.8 % on CIFAR-10) vs all-pool cell (~60 %): every proxy's paper says
    the better network scores higher; same seed -> same score; the model is left unchanged."""
    conv_net, pool_net = space.freeze(CONV), space.freeze(POOL)
    before = {k: v.clone() for k, v in conv_net.state_dict().items()}
    for seed in (0, 1, 2):
        a = score(name, conv_net, batch, seed=seed)
        b = score(name, pool_net, batch, seed=seed)
        assert math.isfinite(a) and math.isfinite(b)
        assert a == score(name, conv_net, batch, seed=seed)  # deterministic
        assert a > b, (name, seed, a, b)
    after = conv_net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in conv_net.parameters())


def test_proxy_values_depend_on_seed_not_on_the_model_instance(space, batch):
    a = score("snip", space.freeze(CONV), batch, seed=0)
    assert a == score("snip", space.freeze(CONV), batch, seed=0)  # another instance, same arch
    assert a != score("snip", space.freeze(CONV), batch, seed=1)


def test_data_free_proxies_ignore_the_data(space, batch):
    net = space.freeze(CONV)
    for name in DATA_FREE:
        assert score(name, net, batch, seed=3) == score(name, net, (8, 3, 8, 8), seed=3)  # zen: same batch size


def test_synflow_matches_definition_on_a_linear_net():
    """f(x) = W2 W1 x with |W|; R = 1ᵀ|W2||W1|1; Σ|θ ⊙ ∂R/∂θ| = 2R for a 2-layer linear net."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.arange(12.0).reshape(4, 3) - 5)
        net[1].weight.copy_(torch.arange(8.0).reshape(2, 4) - 3)
    with torch.no_grad():
        r = float(net[1].weight.abs().sum(0) @ net[0].weight.abs().sum(1))
    assert score("synflow", net, (5, 3), reinit=False) == pytest.approx(2 * r)


def test_naswot_counts_distinct_activation_patterns():
    """Identical inputs give a singular K_H (log|det| -> -inf or tiny); distinct ones a larger score."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    same = torch.ones(6, 4)
    distinct = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    assert score("naswot", net, distinct, seed=0) > score("naswot", net, same, seed=0)


def test_bad_input_errors(space, batch):
    net = space.freeze(CONV)
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'synflw'.*synflow"):
        score("synflw", net, batch)
    with pytest.raises(ValueError, match="need targets"):
        ZeroCostEvaluator("snip", batch[0])
    with pytest.raises(TypeError, match="minibatch"):
        score("synflow", net, "images")
    with pytest.raises(ValueError, match="ReLU"):
        score("naswot", torch.nn.Linear(3, 2), torch.randn(4, 3))


def test_shape_gives_seeded_stand_in_batch(space):
    net = space.freeze(CONV)
    a = score("grad_norm", net, (8, 3, 8, 8), seed=0)
    assert math.isfinite(a) and a == score("grad_norm", net, (8, 3, 8, 8), seed=0)


def test_zero_cost_evaluator_in_an_experiment(space, batch):
    ev = ZeroCostEvaluator(["synflow", "naswot", "params"], batch)
    assert ev.metric == "synflow"
    exp = Experiment(space, RegularizedEvolution(population_size=4, sample_size=2), ev,
                     max_trials=6, executor="inline", seed=0)
    exp.run()
    trials = exp.trials()
    assert len(trials) == 6 and all(t.status.value == "SUCCEEDED" for t in trials)
    for t in trials:
        assert set(t.metrics) >= {"synflow", "naswot", "params"}
        assert t.metrics["synflow"] == score("synflow", space.freeze(t.arch), batch, seed=0)


def test_warm_start_trains_the_proxy_best_first(space):
    scorer = ProxyScorer(space, "synflow", (1, 3, 8, 8))
    strat = ZeroCostWarmStart(RegularizedEvolution(population_size=3, sample_size=2), scorer, candidates=30, top_k=3)
    trials = run_ask_tell(strat, nasbench201_space(), lambda a: 0.0, budget=8, seed=0)
    first = [t.arch for t in trials[:3]]
    assert [a for a, _ in strat.top] == first
    ranked = sorted((s for _, s in strat.top), reverse=True)
    assert [s for _, s in strat.top] == ranked
    assert scorer.calls == 30 and strat.scoring_seconds > 0
    # the scored candidates' best 3 are exactly the top: nothing unscored beat them
    assert min(s for _, s in strat.top) >= max(v for k, v in _all_scores(scorer).items() if k not in _keys(first))
    # after the warm archs, evolution (population already filled by them) mutates at once
    keys = {_key(a) for a in first}
    assert all(_key(t.arch) not in keys for t in trials[3:])
    assert len({_key(t.arch) for t in trials}) == 8


def _key(a):
    import json

    return json.dumps(dict(a), sort_keys=True, default=str)


def _keys(archs):
    return {_key(a) for a in archs}


def _all_scores(scorer):
    return {k: v["synflow"] for k, v in scorer._cache.items()}


def test_prefilter_alone_trains_only_top_k(space):
    strat = ZeroCostWarmStart(None, ProxyScorer(space, "params", (1, 3, 8, 8)), candidates=20, top_k=4)
    trials = run_ask_tell(strat, nasbench201_space(), lambda a: 1.0, budget=50, seed=1)
    assert len(trials) == 4


def test_warm_start_state_round_trip(space):
    scorer = ProxyScorer(space, "params", (1, 3, 8, 8))
    a = ZeroCostWarmStart(RegularizedEvolution(population_size=3, sample_size=2), scorer, candidates=10, top_k=3)
    a.setup(nasbench201_space(), 0)
    first = a.ask()
    state = a.state_dict()
    b = ZeroCostWarmStart(RegularizedEvolution(population_size=3, sample_size=2), scorer, candidates=10, top_k=3)
    b.setup(nasbench201_space(), 0)
    b.load_state_dict(state)
    calls = scorer.calls
    assert a.ask() == b.ask() and first is not None and scorer.calls == calls


def test_predictor_uses_proxy_features():
    """With the table's own CIFAR-100 accuracy as a feature the predictor finds a strong arch
    (>= 94.0 % on CIFAR-10) faster than without, on 5 seeds (the feature is informative)."""
    table = NasBench201Table(dataset="cifar10")
    feat = NasBench201Table(dataset="cifar100")
    with_f, without = [], []
    for seed in range(5):
        for out, features in ((with_f, feat.lookup), (without, None)):
            strat = PredictorBased(num_init=5, epochs=60, features=features)
            trials = run_ask_tell(strat, nasbench201_space(), table.lookup, budget=30, seed=seed)
            out.append(max(table.lookup(t.arch) for t in trials))
    assert np.mean(with_f) > np.mean(without)
    with pytest.raises(TypeError, match="features"):
        PredictorBased(features=3)
