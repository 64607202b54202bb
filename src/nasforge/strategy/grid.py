"""Grid search: every arch of the space exactly once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np

from nasforge.space import Arch, Space
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial

__all__ = ["GridSearch"]

_MAX_SHUFFLE = 50_000_000


class GridSearch(Strategy):
    """Enumerate the space; ``ask`` returns None once every arch has been proposed.

    The order is :meth:`Space.grid`'s (last label varies fastest), or a seeded random
    permutation with ``shuffle=True`` (spaces up to 50 million archs). In a conditional space
    only canonical archs are proposed (every network once; labels of unused branches are left
    out). Example::

        strategy = GridSearch(shuffle=True)
    """

    _state_attrs = ("_position",)
    _repr_attrs = ("shuffle",)

    def __init__(self, shuffle: bool = False):
        self.shuffle = bool(shuffle)

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        limit = _MAX_SHUFFLE if not space.conditional else _MAX_SHUFFLE // 10
        if self.shuffle and space.size > limit:
            raise ValueError(
                f"GridSearch(shuffle=True) needs a space of at most {limit} archs to permute; "
                f"this one has {space.size}; use shuffle=False or the Random strategy"
            )
        self._sizes = [len(space[label]) for label in space.labels]
        self._position = 0
        self._perm: np.ndarray | None = None
        self._seed = int(self.rng.integers(2**63 - 1))
        self._iter: Iterator[Arch] | None = None  # conditional spaces: canonical archs in grid order
        self._iter_pos = 0

    def _arch_at(self, index: int) -> Arch:
        if self.space.conditional:
            if self.shuffle:
                return self._archs[index]
            if self._iter is None or self._iter_pos > index:
                self._iter, self._iter_pos = self.space.grid(), 0
            # canonical archs in grid order, generated lazily
            arch = next(itertools.islice(self._iter, index - self._iter_pos, None))
            self._iter_pos = index + 1
            return arch
        indices = []
        for size in reversed(self._sizes):
            index, r = divmod(index, size)
            indices.append(r)
        return self.space.from_indices(indices[::-1])

    @cached_property
    def _archs(self) -> list[Arch]:
        return list(self.space.grid())

    def ask(self) -> Arch | None:
        if self._position >= self.space.size:
            return None
        index = self._position
        if self.shuffle:
            if self._perm is None:
                self._perm = np.random.default_rng(self._seed).permutation(self.space.size)
            index = int(self._perm[index])
        self._position += 1
        return self._arch_at(index)

    def tell(self, trial: Trial) -> None:
        """The order is fixed: results change nothing."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seed": self._seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if int(state["seed"]) != self._seed:
            self._seed = int(state["seed"])
            self._perm = None
