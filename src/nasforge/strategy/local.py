"""Local search: best-improvement hill climbing over one-choice neighbours, with restarts
(as studied for NAS by White et al. 2021, "Local Search is State of the Art for Neural
Architecture Search Benchmarks")."""

from __future__ import annotations

import logging

from nasforge.space import Arch, Space, arch_key
from nasforge.strategy.base import HistoryStrategy

__all__ = ["LocalSearch"]

_log = logging.getLogger("nasforge.strategy.local")


class LocalSearch(HistoryStrategy):
    """Best-improvement hill climbing with random restarts.

    Starting from a random arch, every neighbour that differs in exactly one choice is
    evaluated (in a random order; archs already evaluated are not proposed again, their known
    score is used). When the whole neighbourhood is known the search moves to the best
    neighbour if it beats the current arch; otherwise the current arch is a local optimum and
    the search restarts from a random unseen arch.

    ``ask`` returns None while the last members of a neighbourhood are still running (the next
    move needs their scores), and once the space is exhausted.

    Example::

        strategy = LocalSearch()
    """

    _state_attrs = ("_center", "_neighbourhood", "_queue", "_restarts", "_moves")
    _repr_attrs = ("max_restarts",)

    def __init__(self, max_restarts: int | None = None):
        if max_restarts is not None and (not isinstance(max_restarts, int) or max_restarts < 0):
            raise ValueError(f"max_restarts must be None or an integer >= 0, got {max_restarts!r}")
        self.max_restarts = max_restarts

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self._center: str | None = None
        self._neighbourhood: list[str] = []  # keys of the centre's neighbours
        self._queue: list[Arch] = []  # still to propose, in order
        self._restarts = -1
        self._moves = 0

    def _start(self) -> bool:
        if self.max_restarts is not None and self._restarts >= self.max_restarts:
            return False
        arch = self._random_unseen()
        if arch is None:
            return False
        self._restarts += 1
        self._set_center(arch, include_center=True)
        return True

    def _set_center(self, arch: Arch, include_center: bool) -> None:
        self._center = arch_key(arch)
        neighbours = self.space.neighbors(arch)
        neighbours = [neighbours[int(i)] for i in self.rng.permutation(len(neighbours))]
        self._neighbourhood = [arch_key(a) for a in neighbours]
        self._queue = ([dict(arch)] if include_center else []) + neighbours

    def _next_center(self) -> Arch | None:
        """Best neighbour if it improves on the centre, else None (local optimum)."""
        center_score = None if self._center is None else self._scores.get(self._center)
        known = [k for k in self._neighbourhood if k in self._scores]
        if center_score is None or not known:
            return None
        best = max(known, key=lambda k: self._scores[k])
        return self._asked[best] if self._scores[best] > center_score else None

    def ask(self) -> Arch | None:
        while True:
            while self._queue:
                arch = self._queue.pop(0)
                if arch_key(arch) not in self._asked:
                    return self._propose(arch)
            if self._center is None:
                if not self._start():
                    return None
                continue
            if any(k in self._pending for k in [self._center, *self._neighbourhood]):
                return None  # the move depends on results still running
            nxt = self._next_center()
            if nxt is not None:
                self._moves += 1
                self._set_center(nxt, include_center=False)
                continue
            _log.debug("local optimum %s; restarting", self._center)
            self._center = None
            if self._exhausted():
                return None
