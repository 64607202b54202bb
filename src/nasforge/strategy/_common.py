"""Shared machinery for the strategies: arch keys, the asked/told history, de-duplication.

Torch-free. Private to :mod:`nasforge.strategy`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nasforge.space import Arch, Space
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial

__all__ = ["arch_key", "HistoryStrategy", "check_positive_int", "check_fraction", "check_choice"]

# Spaces up to this size may be enumerated to find the last unseen archs.
_ENUMERABLE = 2_000_000


def arch_key(arch: Mapping[str, Any]) -> str:
    """A canonical string for an arch (sorted-key JSON), used to recognise repeats."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= v <= high) or math.isnan(v):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return v


def check_choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")
    return value


class HistoryStrategy(Strategy):
    """A strategy that remembers what it proposed and what it was told.

    * ``_asked``: key -> arch for every proposed arch (pending or finished), in ask order;
    * ``_pending``: key -> number of asks not yet told;
    * ``_scores``: key -> latest score of a told, non-failed trial; ``_failed``: keys that failed.
    * ``_order``: told keys in tell order (with repeats), with their scores, for strategies that
      need the chronology (aging evolution, moving baselines).

    With ``dedup=True`` subclasses should propose an arch at most once and use
    :meth:`_random_unseen` as a fallback; :meth:`ask` returns None when the space is exhausted.
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

    def _key(self, arch: Mapping[str, Any]) -> str:
        return arch_key(self._canonical(arch))

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
        n = self._pending.get(key, 0)
        if n > 1:
            self._pending[key] = n - 1
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

    def _is_seen(self, arch_or_key: Mapping[str, Any] | str) -> bool:
        key = arch_or_key if isinstance(arch_or_key, str) else self._key(arch_or_key)
        return key in self._asked

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
        if not unseen:
            return None
        return unseen[int(self.rng.integers(len(unseen)))]

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


def topk_keys(scores: Mapping[str, float], k: int) -> list[str]:
    """Keys of the ``k`` best scores, best first (ties broken by insertion order)."""
    items = list(scores.items())
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    return [items[i][0] for i in order[:k]]
