"""The one-shot trainer conformance suite: what every trainer of :mod:`nasforge.oneshot` must do.

A reusable pytest class; subclass it and name your trainer::

    class TestMyTrainer(TrainerContract):
        trainer_class = MyTrainer
        trainer_options = {"my_option": 3}      # optional: keyword arguments for a small, fast run

On a tiny space (:class:`ContractSpace`; override :meth:`~TrainerContract.make_model` and
:meth:`~TrainerContract.make_dataset` for your own) it checks that the export is a canonical arch of
``model.space`` that survives JSON; that ``model.freeze`` of it has no choice left and runs; that the
same seed and initial weights repeat the arch, the architecture state (α or controller) and the
weights without touching the global torch RNG; and that when training raises, ``fit()`` re-raises
with the user's model restored (its choices back, torch's thread count back). The trainer is built
NNI-style, ``trainer_class(model, loss, metrics, [reward_function,] optimizer, num_epochs, dataset,
batch_size=8, seed=..., threads=1, **trainer_options)``, positional arguments filled by name.
``tests/test_oneshot_contract.py`` runs it on every trainer :mod:`nasforge.oneshot` exports.
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable
from typing import Any, ClassVar

import torch

import nasforge.nn as nn
from nasforge.nn.choices import ChoiceModule
from nasforge.oneshot.base import OneShotTrainer

__all__ = ["ContractSpace", "TrainerContract"]


class ContractSpace(nn.Module):
    """The suite's default model space: one choice of each kind a supernet shares, and batch norm."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.op = nn.LayerChoice({"conv3": nn.Conv2d(8, 8, 3, padding=1), "conv1": nn.Conv2d(8, 8, 1),
                                  "pool": nn.AvgPool2d(3, 1, 1)}, label="op")
        self.act = nn.LayerChoice([nn.ReLU(), nn.Identity()], label="act")
        self.blocks = nn.Repeat(lambda i: nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()), depth=(1, 2), label="depth")
        self.skip = nn.InputChoice(n_candidates=2, label="skip")
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        a = self.act(self.op(h))
        b = self.blocks(a)
        return self.fc(self.skip([b, a + h]).mean((2, 3)))


def _raising_loss(fail_at: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross entropy that raises from its ``fail_at``-th call on (a failure in the middle of training)."""
    calls = itertools.count(1)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if next(calls) >= fail_at:
            raise RuntimeError("contract: the loss failed on purpose")
        return torch.nn.functional.cross_entropy(out, y)

    return loss


def _positional_names(cls: type) -> list[str]:
    """The positional parameters of ``cls(...)``, looking through ``__init__(self, *args, **kwargs)`` to the parent's."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
            continue
        return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    return []


class TrainerContract:
    """Conformance checks of a one-shot trainer; subclass and set :attr:`trainer_class` (see the module doc)."""

    trainer_class: ClassVar[type | None] = None  # a subclass of OneShotTrainer
    trainer_options: ClassVar[dict[str, Any]] = {}
    batch_size: ClassVar[int] = 8
    num_epochs: ClassVar[int] = 1

    def make_model(self) -> torch.nn.Module:
        """A fresh model space; two calls give the same initial weights (the global RNG is left alone)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return ContractSpace()

    def make_dataset(self) -> torch.utils.data.Dataset:
        """A tiny, learnable classification set matching :meth:`make_model` (two halves of 24 samples)."""
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 4, (48,), generator=g)
        x = torch.randn(48, 3, 6, 6, generator=g) + y.view(-1, 1, 1, 1).float() * 0.5
        return torch.utils.data.TensorDataset(x, y)

    def example_input(self) -> torch.Tensor:
        return torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))

    def make_trainer(self, model: torch.nn.Module, dataset: Any, seed: int, loss: Callable[..., torch.Tensor] | None = None) -> Any:
        """Build the trainer: NNI-style positional arguments by name, then the keyword options."""
        cls = self.trainer_class
        if cls is None:
            raise TypeError(f"{type(self).__name__} must set trainer_class (or override make_trainer)")
        given = {"model": model, "loss": loss, "metrics": None, "reward_function": None, "optimizer": None,
                 "num_epochs": self.num_epochs, "dataset": dataset}
        unknown = [name for name in _positional_names(cls) if name not in given]
        if unknown:
            raise TypeError(f"{cls.__name__}'s positional argument(s) {unknown} are not among the NNI-style "
                            f"{sorted(given)}; override make_trainer to build it")
        positional = [given[name] for name in _positional_names(cls)]
        options = {"batch_size": self.batch_size, "seed": seed, "threads": 1, **self.trainer_options}
        return cls(*positional, **options)

    def arch_state(self, trainer: Any) -> dict[str, torch.Tensor]:
        """The learned architecture state: α of every label, and a controller's weights if there is one."""
        state = {f"alpha.{k}": v for k, v in trainer.arch_parameters().items()}
        controller = getattr(trainer, "controller", None)
        if isinstance(controller, torch.nn.Module):
            state.update({f"controller.{k}": v.detach().clone() for k, v in controller.state_dict().items()})
        return state

    def _fit(self, seed: int = 0) -> tuple[torch.nn.Module, Any]:
        model = self.make_model()
        trainer = self.make_trainer(model, self.make_dataset(), seed)
        returned = trainer.fit()
        assert returned is trainer, f"{type(trainer).__name__}.fit() must return the trainer itself"
        return model, trainer

    @staticmethod
    def _choice_modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        return [(name, m) for name, m in model.named_modules() if isinstance(m, ChoiceModule)]

    def test_is_a_one_shot_trainer(self):
        assert self.trainer_class is not None and issubclass(self.trainer_class, OneShotTrainer)
        assert not inspect.isabstract(self.trainer_class), f"{self.trainer_class.__name__} leaves abstract methods"

    def test_export_is_a_canonical_arch_of_the_space(self):
        model, trainer = self._fit()
        arch = trainer.export()
        space = model.space
        assert space.validate(arch) == arch, f"export {arch} is not canonical: {space.validate(arch)}"
        assert json.loads(json.dumps(arch)) == arch, f"export {arch} does not survive JSON"
        assert trainer.export() == arch, "export() must give the same arch when called again"

    def test_freeze_of_the_export_runs_a_forward_pass(self):
        model, trainer = self._fit()
        net = model.freeze(trainer.export())
        assert not self._choice_modules(net), f"the frozen network still has choices: {self._choice_modules(net)[:3]}"
        net.eval()
        with torch.no_grad():
            out = net(self.example_input())
        assert out.shape[0] == 2 and bool(torch.isfinite(out).all())

    def test_same_seed_repeats_the_search_without_the_global_rng(self):
        runs = []
        for _ in range(2):
            torch.manual_seed(1234)  # whatever the global RNG holds must not matter, and must not move
            before = torch.get_rng_state()
            model, trainer = self._fit(seed=7)
            assert torch.equal(torch.get_rng_state(), before), "the trainer drew from the global torch RNG"
            runs.append((trainer.export(), self.arch_state(trainer), model.state_dict()))
        (arch0, state0, w0), (arch1, state1, w1) = runs
        assert arch0 == arch1, f"same seed, different archs: {arch0} vs {arch1}"
        assert state0.keys() == state1.keys()
        differing = [k for k in state0 if not torch.equal(state0[k], state1[k])]
        assert not differing, f"same seed, different architecture state: {differing[:4]}"
        assert all(torch.equal(w0[k], w1[k]) for k in w0), "same seed, different trained weights"

    def test_fit_restores_the_model_when_training_raises(self):
        model = self.make_model()
        choices = self._choice_modules(model)
        threads = torch.get_num_threads()
        trainer = self.make_trainer(model, self.make_dataset(), 0, loss=_raising_loss(2))
        try:
            trainer.fit()
        except RuntimeError as exc:
            assert "failed on purpose" in str(exc), f"fit() raised another error than training's: {exc!r}"
        else:
            raise AssertionError("fit() swallowed the error raised during training")
        assert self._choice_modules(model) == choices, "fit() left supernet modules in the user's model"
        left = [name for name, m in model.named_modules() if type(m).__module__ == "nasforge.oneshot.supernet"]
        assert not left, f"supernet modules left in the model: {left[:4]}"
        assert torch.get_num_threads() == threads, "fit() did not restore torch's thread count"
        arch = model.space.sample(0)
        with torch.no_grad():
            assert model.freeze(arch)(self.example_input()).shape[0] == 2
