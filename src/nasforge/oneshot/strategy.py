"""Running a one-shot trainer inside an :class:`~nasforge.experiment.Experiment`."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from nasforge.errors import InvalidSpaceError
from nasforge.space import Arch, Space
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial

__all__ = ["OneShotStrategy"]


class OneShotStrategy(Strategy):
    """A strategy whose single proposal is a one-shot trainer's exported arch.

    The first :meth:`ask` runs ``trainer.fit()`` and proposes ``trainer.export()``; every later
    ask returns None, so the experiment evaluates (and stores) exactly that arch with its
    evaluator and stops. ``exp.test(...)`` then retrains it from scratch on the test protocol.
    The exported arch, the per-epoch history and softmax(α) go into the strategy state (stored
    with the experiment), so a resumed experiment does not search again.

    Example::

        trainer = DartsTrainer(model, nn.CrossEntropyLoss(), None, optimizer, num_epochs=5, dataset=data)
        exp = Experiment(model, OneShotStrategy(trainer), Classification(train, val, test), executor="inline")
        exp.run()
        exp.test(top_k=1, retrain=True)
    """

    def __init__(self, trainer: Any):
        if not callable(getattr(trainer, "fit", None)) or not callable(getattr(trainer, "export", None)):
            raise TypeError(f"OneShotStrategy needs a trainer with fit() and export(), got {type(trainer).__name__}")
        self.trainer = trainer
        self.arch: Arch | None = None
        self.score: float | None = None

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        own = getattr(getattr(self.trainer, "supernet", None), "space", None)
        if own is not None and list(own) != list(space):
            raise InvalidSpaceError(
                f"the trainer's model space has labels {list(own)[:6]} but the experiment's has {list(space)[:6]}; "
                f"pass the same model object to the trainer and to Experiment"
            )
        if seed is not None and getattr(self.trainer, "seed", None) is None:
            # the trainer drew its generator's seed when it was built; the global RNG is not touched here
            logging.getLogger("nasforge.oneshot").info("the trainer has no seed of its own: the experiment's seed %d does not fix its search; "
                                     "pass seed= to the trainer for a reproducible arch", seed)

    def ask(self) -> Arch | None:
        if self.arch is not None:
            return None
        self.trainer.fit()
        self.arch = dict(self.trainer.export())
        return dict(self.arch)

    def tell(self, trial: Trial) -> None:
        if self.arch is not None and trial.arch == self.arch:
            self.score = trial.score

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["arch"] = self.arch
        state["trainer"] = type(self.trainer).__name__
        state["history"] = list(getattr(self.trainer, "history", []))
        if self.arch is not None and hasattr(self.trainer, "arch_probabilities"):
            with contextlib.suppress(Exception):  # a trainer without α (e.g. ENAS) has nothing to add
                state["arch_probabilities"] = self.trainer.arch_probabilities()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.arch = state.get("arch")

    def __repr__(self) -> str:
        return f"OneShotStrategy({type(self.trainer).__name__})"
