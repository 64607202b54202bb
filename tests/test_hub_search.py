"""Every hub space with every multi-trial strategy (a few ask/tell steps) and with the one-shot
trainers that apply to it (one step each on a tiny input)."""

from __future__ import annotations

import inspect
import math
import zlib

import pytest
import torch
from torch.utils.data import TensorDataset

from nasforge import hub, strategy
from nasforge.oneshot import (
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ProxylessTrainer,
    RandomOneShotTrainer,
)
from nasforge.strategy.testing import run_ask_tell
from nasforge.trial import TrialStatus

# Tiny versions of the spaces (their structure, fewer channels and cells).
SPACES = {
    "DartsSpace": (lambda: hub.DartsSpace(C=4, layers=3), (3, 8, 8)),
    "EnasMacroSpace": (lambda: hub.EnasMacroSpace(num_layers=4, out_filters=4), (3, 8, 8)),
    "RnnCellSpace": (lambda: hub.RnnCellSpace(hidden_size=8, num_nodes=4), (6,)),
    "ProxylessSpace": (lambda: hub.ProxylessSpace(width_mult=0.1), (3, 16, 16)),
    "MobileNetV3Space": (lambda: hub.MobileNetV3Space(width_mult=0.1), (3, 16, 16)),
    "ShuffleNetSpace": (lambda: hub.ShuffleNetSpace(stage_repeats=(1, 2, 1, 1), stage_channels=(24, 32, 48, 64),
                                                    last_channels=64), (3, 16, 16)),
    "NasBench101Space": (lambda: hub.NasBench101Space(stem_channels=8, num_stacks=2), (3, 8, 8)),
    "AutoActivation": (lambda: hub.AutoActivation(unit_num=2), (5,)),
}

# Every strategy nasforge exports, configured for a few steps.
STRATEGIES = {
    "Random": lambda: strategy.Random(dedup=True),
    "GridSearch": lambda: strategy.GridSearch(),
    "RegularizedEvolution": lambda: strategy.RegularizedEvolution(population_size=3, sample_size=2),
    "PolicyBasedRL": lambda: strategy.PolicyBasedRL(),
    "TPE": lambda: strategy.TPE(n_startup_trials=2),
    "PredictorBased": lambda: strategy.PredictorBased(num_init=3, n_models=2, hidden=8, epochs=5),
    "Progressive": lambda: strategy.Progressive(beam_size=2, n_models=2, hidden=8, epochs=5),
    "LocalSearch": lambda: strategy.LocalSearch(),
    "SuccessiveHalving": lambda: strategy.SuccessiveHalving(strategy.Random(dedup=True), max_step=3),
    "Hyperband": lambda: strategy.Hyperband(strategy.RegularizedEvolution(population_size=3, sample_size=2), max_step=3),
    # the scorer stands in for a zero-cost proxy: any arch -> float, here a hash of the arch
    "ZeroCostWarmStart": lambda: strategy.ZeroCostWarmStart(
        strategy.RegularizedEvolution(population_size=3, sample_size=2),
        lambda a: zlib.crc32(repr(sorted(a.items())).encode()) / 2**32, candidates=6, top_k=2),
}
STEPS = {"SuccessiveHalving": 3, "Hyperband": 3}


def test_every_exported_strategy_is_covered():
    exported = {name for name in strategy.__all__ if isinstance(c := getattr(strategy, name), type)
                and issubclass(c, strategy.Strategy) and not inspect.isabstract(c)}  # not the bases, not Surrogate
    assert exported == set(STRATEGIES)


@pytest.fixture(scope="module")
def models():
    return {name: make() for name, (make, _) in SPACES.items()}


def _score(arch, step=None):
    """A deterministic, arch-dependent score (no training); NAS-Bench-101's invalid cells fail."""
    if "edge_0_1" in arch and not hub.NasBench101Space.is_valid(arch):
        return None
    h = zlib.crc32(repr(sorted(arch.items())).encode()) / 2**32
    return h if step is None else h * (1 - math.exp(-step))


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("strategy_name", list(STRATEGIES))
def test_strategy_on_hub_space(models, space_name, strategy_name):
    model = models[space_name]
    space = model.space
    trials = run_ask_tell(STRATEGIES[strategy_name](), space, _score, budget=5, seed=0, steps=STEPS.get(strategy_name))
    assert len(trials) >= 3
    for t in trials:
        assert space.validate(t.arch) == t.arch  # every proposal is an arch of the space
    done = [t for t in trials if t.status in (TrialStatus.SUCCEEDED, TrialStatus.STOPPED)]
    for t in trials:
        if t not in done:  # only NAS-Bench-101's invalid cells fail
            assert t.status == TrialStatus.FAILED and not hub.NasBench101Space.is_valid(t.arch)
    if not done:  # the grid's first archs and Progressive's all-zero base have no edges
        assert space_name == "NasBench101Space" and strategy_name in ("GridSearch", "Progressive")
        return
    best = max(done, key=lambda t: t.score)
    shape = SPACES[space_name][1]
    out = model.freeze(best.arch)(torch.randn(2, *shape))  # the best proposal freezes and runs
    assert out.shape[0] == 2


# -- one-shot -------------------------------------------------------------------------------------

def _data(shape, n=8, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))


def _run(trainer_cls, model, shape, **kwargs):
    data = _data(shape)
    if trainer_cls is EnasTrainer:
        trainer = EnasTrainer(model, None, None, None, None, 1, data, batch_size=4, seed=0, **kwargs)
    else:
        trainer = trainer_cls(model, None, None, None, 1, data, batch_size=4, seed=0, **kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit()
    arch = trainer.export()
    assert model.space.validate(arch) == arch  # a canonical arch of the space
    changed = [k for k, v in model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, before[k].to(v.device))]
    assert changed  # the supernet's weights were trained
    net = model.freeze(arch)
    device = next(net.parameters()).device  # the trainer put the model on its device (cuda when there is one)
    out = net(torch.randn(2, *shape, device=device))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    return trainer, arch


SPOS = {"search_samples": 2, "population_size": 2, "calib_batches": 1, "eval_batches": 1}
ONESHOT = [
    ("DartsSpace", DartsTrainer, {}),
    ("DartsSpace", DartsTrainer, {"exclude_zero": True}),
    ("DartsSpace", GumbelDartsTrainer, {}),
    ("DartsSpace", RandomOneShotTrainer, SPOS),
    ("EnasMacroSpace", EnasTrainer, {}),
    ("RnnCellSpace", EnasTrainer, {}),
    ("RnnCellSpace", DartsTrainer, {}),
    ("ProxylessSpace", ProxylessTrainer, {}),
    ("ProxylessSpace", RandomOneShotTrainer, SPOS),
    ("MobileNetV3Space", ProxylessTrainer, {}),
    ("MobileNetV3Space", RandomOneShotTrainer, SPOS),
    ("ShuffleNetSpace", ProxylessTrainer, {}),
    ("ShuffleNetSpace", RandomOneShotTrainer, SPOS),
]


@pytest.mark.parametrize("space_name,trainer_cls,kwargs", ONESHOT, ids=[f"{s}-{t.__name__}" for s, t, _ in ONESHOT])
def test_oneshot_trainer_on_hub_space(space_name, trainer_cls, kwargs):
    make, shape = SPACES[space_name]
    trainer, arch = _run(trainer_cls, make(), shape, **kwargs)
    if kwargs.get("exclude_zero"):
        assert all(v != "none" for k, v in arch.items() if ".op_" in k)


def test_proxyless_latency_table_on_mobilenet_v3_space():
    make, shape = SPACES["MobileNetV3Space"]
    model = make()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    trainer, _ = _run(ProxylessTrainer, model, shape, dummy_input=torch.randn(1, *shape, device=device), latency_weight=0.1)
    table = trainer.latency_table
    blocks = [label for label in model.space if label.count(".") == 0]
    assert set(blocks) <= set(table)
    assert all(len(table[b]) == len(model.space[b]) and min(table[b]) > 0 for b in blocks)
    assert "expected_latency_ms" in trainer.history[-1]


def test_value_choice_spaces_are_refused_by_one_shot_trainers_with_the_reason():
    """NASNet-style loose-end cells and NAS-Bench-101 cells set widths through value choices
    (the width of a cell depends on the arch), which the one-shot trainers do not share weights over."""
    from nasforge.oneshot import UnsupportedOneShotError

    loose = hub.archs.NASNET_A.model_space(C=4, layers=3)
    with pytest.raises(UnsupportedOneShotError, match="value choice"):
        DartsTrainer(loose, None, None, None, 1, _data((3, 8, 8)))
    with pytest.raises(UnsupportedOneShotError, match="value choice"):
        RandomOneShotTrainer(SPACES["NasBench101Space"][0](), None, None, None, 1, _data((3, 8, 8)))
