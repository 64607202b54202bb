"""The shipped one-shot trainer conformance suite, run on every trainer ``nasforge.oneshot`` exports.

Trainers are found by introspection of ``nasforge.oneshot.__all__``: a new trainer is covered
without editing this file. ``FAST`` only shortens runs (fewer sub-networks scored by SPOS).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

import nasforge.oneshot as oneshot
from nasforge.oneshot import OneShotTrainer, RandomOneShotTrainer
from nasforge.oneshot.testing import TrainerContract

TRAINERS = [obj for name in oneshot.__all__ if isinstance(obj := getattr(oneshot, name), type)
            and issubclass(obj, OneShotTrainer) and not inspect.isabstract(obj)]
FAST = {RandomOneShotTrainer: {"search_samples": 4, "population_size": 3, "top_k": 2}}

for _cls in TRAINERS:
    _name = f"Test{_cls.__name__}Contract"
    globals()[_name] = type(_name, (TrainerContract,), {"trainer_class": _cls, "trainer_options": FAST.get(_cls, {})})


def test_every_exported_trainer_is_covered():
    names = {cls.__name__ for cls in TRAINERS}
    assert {"DartsTrainer", "GumbelDartsTrainer", "DrNasTrainer", "EnasTrainer", "ProxylessTrainer",
            "RandomOneShotTrainer"} <= names
    assert all(f"Test{n}Contract" in globals() for n in names)


def test_the_base_class_is_abstract():
    assert inspect.isabstract(OneShotTrainer)
    assert {"_train_epoch", "_export"} <= OneShotTrainer.__abstractmethods__


class _Lazy(OneShotTrainer):
    """Trains nothing and exports an arch outside the space: the suite must catch it."""

    def _train_epoch(self, epoch):
        return {}

    def _export(self):
        return {"op": "conv7"}


def test_the_suite_fails_a_trainer_that_breaks_the_contract():
    class Check(TrainerContract):
        trainer_class = _Lazy

    with pytest.raises(Exception, match="conv7"):
        Check().test_export_is_a_canonical_arch_of_the_space()
    with pytest.raises(AssertionError, match="swallowed"):  # its epochs never call the loss
        Check().test_fit_restores_the_model_when_training_raises()


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from oneshot_custom_trainer import RoundRobinTrainer  # noqa: E402


class TestExampleCustomTrainerContract(TrainerContract):
    """The README's third-party trainer (examples/oneshot_custom_trainer.py) passes the same suite."""

    trainer_class = RoundRobinTrainer


def test_example_custom_trainer_trains_every_candidate_equally_often():
    suite = TestExampleCustomTrainerContract()
    model = suite.make_model()
    trainer = suite.make_trainer(model, suite.make_dataset(), seed=0)
    trainer.num_epochs = 2
    trainer.fit()
    counts = trainer.path_counts
    steps = 2 * trainer._steps_per_epoch()
    for label in trainer.supernet.slots:
        assert sum(counts[label]) == steps and max(counts[label]) - min(counts[label]) <= 1, (label, counts[label])
    assert torch.isfinite(torch.tensor(trainer.history[-1]["loss"]))
