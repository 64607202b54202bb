"""The ask/tell contract every multi-trial strategy follows. No torch import here."""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.space import Arch, Space, as_rng
from nasforge.trial import Trial

__all__ = ["Strategy", "rng_state", "restore_rng"]


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-serialisable state of a numpy Generator."""
    return rng.bit_generator.state


def restore_rng(state: dict[str, Any]) -> np.random.Generator:
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


class Strategy:
    """Base class of multi-trial search strategies.

    The experiment owns the loop: it calls :meth:`setup` once, then :meth:`ask` whenever a
    worker is free and :meth:`tell` whenever a trial finishes (successful or not). A strategy
    never sleeps, polls, trains networks or knows about processes or storage.

    * ``ask() -> Arch | None``: the next arch to evaluate; ``None`` means "nothing to propose
      now" — the experiment asks again after the next ``tell`` and stops when nothing runs.
    * ``tell(trial)``: ``trial.score`` is larger-is-better, ``None`` for a failed trial.
    * ``on_report(trial, step, score) -> bool``: True asks the experiment to stop that trial early.
    * ``state_dict()`` / ``load_state_dict()``: JSON-serialisable, for resume.
    """

    space: Space
    rng: np.random.Generator

    def setup(self, space: Space, seed: int | None = None) -> None:
        self.space = space
        self.rng = as_rng(seed)

    def ask(self) -> Arch | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial. The default ignores it (e.g. random search)."""

    def on_report(self, trial: Trial, step: int, score: float) -> bool:
        """Return True to stop ``trial`` early; the default never does."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng = restore_rng(state["rng"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
