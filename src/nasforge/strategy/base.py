"""The ask/tell contract every multi-trial strategy follows (:class:`Strategy`, an abstract base
class), the history-keeping base most strategies build on (:class:`HistoryStrategy`), and the
argument checks the strategies share. No torch import here."""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from nasforge.space import Arch, Space, arch_key, as_rng
from nasforge.trial import Trial

__all__ = ["HistoryStrategy", "MultiObjective", "Strategy", "rng_state", "restore_rng"]

# Spaces up to this size may be enumerated to find the last unseen archs.
_ENUMERABLE = 2_000_000


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-serialisable state of a numpy Generator."""
    return dict(rng.bit_generator.state)


def restore_rng(state: dict[str, Any]) -> np.random.Generator:
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan  # not a number: rejected below
    if not low <= v <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return v


def check_choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")
    return value


def topk_keys(scores: Mapping[str, float], k: int) -> list[str]:
    """Keys of the ``k`` best scores, best first (ties broken by insertion order)."""
    return sorted(scores, key=lambda key: -scores[key])[:k]


class Strategy(ABC):
    """Abstract base class of multi-trial search strategies: implement :meth:`ask` and :meth:`tell`.

    The experiment owns the loop: it calls :meth:`setup` once, then :meth:`ask` whenever a
    worker is free and :meth:`tell` whenever a trial finishes (successful or not). A strategy
    never sleeps, polls, trains networks or knows about processes or storage.

    * ``ask() -> Arch | None``: the next arch to evaluate; ``None`` means "nothing to propose
      now" — the experiment asks again after the next ``tell`` and stops when nothing runs.
    * ``tell(trial)``: ``trial.score`` is larger-is-better, ``None`` for a failed trial.
    * ``on_report(trial, step, score) -> bool``: True asks the experiment to stop that trial early.
    * ``state_dict()`` / ``load_state_dict()``: JSON-serialisable, for resume; the defaults hold
      the generator ``self.rng`` that :meth:`setup` seeds and the attributes named in
      ``_state_attrs`` (extend them for anything else);
    * ``repr()`` shows the settings named in ``_repr_attrs``.

    :class:`HistoryStrategy` adds the asked/told bookkeeping; ``nasforge.strategy.testing.
    StrategyConformance`` is the test suite a new strategy should pass.
    """

    space: Space
    rng: np.random.Generator

    def setup(self, space: Space, seed: int | None = None) -> None:
        self.space = space
        self.rng = as_rng(seed)

    @abstractmethod
    def ask(self) -> Arch | None:
        """The next arch to evaluate, or None when there is nothing to propose (now or ever)."""

    @abstractmethod
    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial (``pass`` for a strategy that ignores results)."""

    def on_report(self, trial: Trial, step: int, score: float) -> bool:
        """Return True to stop ``trial`` early; the default never does."""
        return False

    #: attributes (JSON values) that :meth:`state_dict` saves under their names without the
    #: leading underscore and :meth:`load_state_dict` restores, e.g. ``("_queue", "_moves")``
    _state_attrs: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), **{a.lstrip("_"): copy.deepcopy(getattr(self, a)) for a in self._state_attrs}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng = restore_rng(state["rng"])
        for a in self._state_attrs:
            setattr(self, a, copy.deepcopy(state[a.lstrip("_")]))

    #: settings that ``repr()`` shows as ``name=value``, e.g. ``("shuffle",)``
    _repr_attrs: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{a}={getattr(self, a)!r}" for a in self._repr_attrs)
        return f"{type(self).__name__}({args})"


class MultiObjective:
    """Mixin of the strategies with a multi-objective mode, which the experiment switches on with
    :meth:`set_objectives` when given ``objectives=[...]``."""

    def set_objectives(self, n: int) -> None:
        """Number of objectives of ``trial.objectives`` (larger is better); 2 or more switches to
        the multi-objective mode. Call before any ask (before or after ``setup``)."""
        self._n_objectives = check_positive_int("n", n)

    @property
    def _multi(self) -> bool:
        return getattr(self, "_n_objectives", 1) > 1


class HistoryStrategy(Strategy):
    """A :class:`Strategy` that keeps the history of what it proposed and what it was told.

    What it keeps (all in :meth:`state_dict`, so resume is free):

    * ``_asked``: arch key -> canonical arch for every proposal (pending or finished), in ask order;
    * ``_pending``: key -> number of asks not yet told;
    * ``_scores``: key -> latest score of a told, non-failed trial; ``_failed``: keys that failed;
    * ``_told``: ``[key, score | None]`` in tell order, for strategies that need the chronology.

    What a subclass implements: :meth:`ask`, which returns ``self._propose(arch)`` (records and
    canonicalises it; use :meth:`_random_unseen` for a random arch never proposed, None once the
    space is exhausted); optionally :meth:`tell` (call ``self._record(trial)`` first, it returns
    the key and the score, None when failed); and ``state_dict`` / ``load_state_dict`` extended
    with its own fields (call ``super()``). Keys are :func:`nasforge.space.arch_key` strings.
    :meth:`best` gives the best arch so far.

    Example (a greedy one-choice hill climber; the README's "Writing your own strategy")::

        class Greedy(HistoryStrategy):
            def ask(self):
                best = self.best()
                for _ in range(20 if best else 0):
                    child = self.space.mutate(best[0], self.rng)
                    if not self._is_seen(child):
                        return self._propose(child)
                arch = self._random_unseen()  # None once the space is exhausted
                return None if arch is None else self._propose(arch)
    """

    dedup: bool = True

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self._asked: dict[str, Arch] = {}
        self._pending: dict[str, int] = {}
        self._scores: dict[str, float] = {}
        self._failed: set[str] = set()
        self._told: list[list[Any]] = []  # [key, score|None] in tell order
        self._space_fp = space.fingerprint(candidates=False)

    # -- bookkeeping ------------------------------------------------------------------------
    def _canonical(self, arch: Mapping[str, Any]) -> Arch:
        """The canonical form (inactive labels dropped): one arch per network, the de-duplication key."""
        return self.space.canonical(arch) if self.space.conditional else dict(arch)

    def _propose(self, arch: Arch) -> Arch:
        arch = self._canonical(arch)
        key = arch_key(arch)
        self._asked.setdefault(key, dict(arch))
        self._pending[key] = self._pending.get(key, 0) + 1
        return dict(arch)

    def _record(self, trial: Trial) -> tuple[str, float | None]:
        """Register a told trial; returns its key and score (None when failed)."""
        arch = self._canonical(trial.arch)
        key = arch_key(arch)
        self._asked.setdefault(key, arch)
        if self._pending.get(key, 0) > 1:
            self._pending[key] -= 1
        else:
            self._pending.pop(key, None)
        score = trial.score
        if score is not None and not (isinstance(score, float) and math.isnan(score)):
            score = float(score)
            self._scores[key] = score
            self._failed.discard(key)
        else:
            score = None
            if key not in self._scores:
                self._failed.add(key)
        self._told.append([key, score])
        return key, score

    def tell(self, trial: Trial) -> None:
        """Record the result (see :meth:`_record`); override to learn more from it."""
        self._record(trial)

    def _is_seen(self, arch_or_key: Mapping[str, Any] | str) -> bool:
        if not isinstance(arch_or_key, str):
            arch_or_key = arch_key(self._canonical(arch_or_key))
        return arch_or_key in self._asked

    @property
    def n_pending(self) -> int:
        return sum(self._pending.values())

    def _exhausted(self) -> bool:
        return len(self._asked) >= self.space.size

    def _random_unseen(self, max_retries: int = 200) -> Arch | None:
        """A uniformly random arch never proposed before; None when the space is exhausted."""
        if self._exhausted():
            return None
        for _ in range(max_retries):
            arch = self.space.sample(self.rng)
            if arch_key(arch) not in self._asked:
                return arch
        if self.space.size > _ENUMERABLE:
            # Astronomically unlikely for a large space; give a repeat rather than enumerate.
            return self.space.sample(self.rng)
        unseen = [a for a in self.space.grid() if arch_key(a) not in self._asked]
        return unseen[int(self.rng.integers(len(unseen)))] if unseen else None

    def best(self) -> tuple[Arch, float] | None:
        """The best arch told so far and its score (None before the first success)."""
        if not self._scores:
            return None
        key = max(self._scores, key=lambda k: self._scores[k])
        return dict(self._asked[key]), self._scores[key]

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "space": self._space_fp,
            "asked": [[k, a] for k, a in self._asked.items()],
            "pending": dict(self._pending),
            "scores": dict(self._scores),
            "failed": sorted(self._failed),
            "told": [list(x) for x in self._told],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not hasattr(self, "space"):
            raise ValueError(f"{type(self).__name__}.load_state_dict: call setup(space, seed) first")
        fp = state.get("space")
        if fp is not None and fp != self._space_fp:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state was saved for another space "
                f"(fingerprint {fp}, this space is {self._space_fp})"
            )
        super().load_state_dict(state)
        self._asked = {k: dict(a) for k, a in state["asked"]}
        self._pending = {k: int(v) for k, v in state["pending"].items()}
        self._scores = {k: float(v) for k, v in state["scores"].items()}
        self._failed = set(state["failed"])
        self._told = [list(x) for x in state["told"]]
