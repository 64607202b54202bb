"""Random search, the baseline every other strategy must beat."""

from __future__ import annotations

import itertools
import json
from typing import Any

from nasforge.space import Arch, arch_key
from nasforge.strategy.base import Strategy
from nasforge.trial import Trial

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
        samples = (self.space.sample(self.rng) for _ in range(self.max_retries))
        # max_retries samples, then (a nearly exhausted space) the first unseen arch of the grid
        for arch in itertools.chain(samples, self.space.grid()):
            key = arch_key(arch)
            if key not in self._seen:
                self._seen.add(key)
                return arch
        return None

    def tell(self, trial: Trial) -> None:
        """Results change nothing."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self._seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # keys are re-made, so states saved with another JSON spacing still load
        self._seen = {arch_key(json.loads(k)) for k in state.get("seen", [])}

    def __repr__(self) -> str:
        return f"Random(dedup={self.dedup})"
