"""Random search, the baseline every other strategy must beat."""

from __future__ import annotations

import json
from typing import Any

from nasforge.space import Arch
from nasforge.strategy.base import Strategy

__all__ = ["Random"]


class Random(Strategy):
    """Uniform random sampling of the space.

    With ``dedup=True`` (the default) a network is never proposed twice: archs are canonical
    (inactive labels dropped), and ``ask`` returns None once every network has been proposed.
    ``dedup=False`` samples with replacement (the textbook baseline). Example::

        strategy = Random()
    """

    def __init__(self, dedup: bool = True, max_retries: int = 1000):
        self.dedup = dedup
        self.max_retries = max_retries
        self._seen: set[str] = set()

    def ask(self) -> Arch | None:
        if not self.dedup:
            return self.space.sample(self.rng)
        if len(self._seen) >= self.space.size:
            return None
        for _ in range(self.max_retries):
            arch = self.space.sample(self.rng)
            key = _key(arch)
            if key not in self._seen:
                self._seen.add(key)
                return arch
        # Nearly exhausted space: fall back to the first unseen arch of the grid.
        for arch in self.space.grid():
            key = _key(arch)
            if key not in self._seen:
                self._seen.add(key)
                return arch
        return None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self._seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._seen = set(state.get("seen", []))

    def __repr__(self) -> str:
        return f"Random(dedup={self.dedup})"


def _key(arch: Arch) -> str:
    return json.dumps(arch, sort_keys=True)
