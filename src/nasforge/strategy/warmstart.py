"""Zero-cost warm start / pre-filter: score many candidates cheaply, train only the best.

Torch-free: the scorer is any callable ``arch -> float`` (larger is better), typically
:class:`nasforge.evaluate.proxies.ProxyScorer`, which freezes the network and runs a zero-cost
proxy on it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from nasforge.space import Arch, Space, arch_key
from nasforge.strategy.base import Strategy, check_positive_int, topk_keys
from nasforge.trial import Trial

__all__ = ["ZeroCostWarmStart"]

_log = logging.getLogger("nasforge.strategy.warmstart")


class ZeroCostWarmStart(Strategy):
    """Warm-start any strategy with the best of many proxy-scored candidates.

    At the first :meth:`ask` it draws ``candidates`` distinct random archs (seeded), scores each
    with ``scorer(arch)`` (no training) and proposes the ``top_k`` best first. Their results are
    told to the wrapped ``strategy`` as well, and count as its random initialisation (the
    initial random population of :class:`RegularizedEvolution`, the ``num_init`` random archs of
    :class:`PredictorBased`); once they are all told (``ask`` returns None while some still run)
    every ask goes to the wrapped strategy, which never re-proposes a warm arch if it de-duplicates.

    With ``strategy=None`` it is a pure pre-filter: only the ``top_k`` candidates are trained,
    then the search is exhausted.

    ``scoring_seconds`` is the time spent in the scorer (reported apart from training).

    Example::

        from nasforge.evaluate.proxies import ProxyScorer
        scorer = ProxyScorer(NasBench201Space(), "synflow", (1, 3, 32, 32))
        strategy = ZeroCostWarmStart(RegularizedEvolution(), scorer, candidates=1000, top_k=10)
    """

    _state_attrs = ("_queue", "_top")

    def __init__(
        self,
        strategy: Strategy | None,
        scorer: Callable[[Arch], float],
        candidates: int = 1000,
        top_k: int = 10,
    ):
        if strategy is not None and not all(callable(getattr(strategy, m, None)) for m in ("setup", "ask", "tell")):
            raise TypeError(f"strategy must be a nasforge Strategy or None, got {type(strategy).__name__}")
        if not callable(scorer):
            raise TypeError(f"scorer must be a callable arch -> float (e.g. ProxyScorer), got {type(scorer).__name__}")
        self.strategy = strategy
        self.scorer = scorer
        self.candidates = check_positive_int("candidates", candidates)
        self.top_k = check_positive_int("top_k", top_k)
        if self.top_k > self.candidates:
            raise ValueError(f"top_k ({top_k}) must not exceed candidates ({candidates})")

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        if self.strategy is not None:
            self.strategy.setup(space, None if seed is None else int(seed) + 1)
        self._queue: list[Arch] | None = None  # None: not scored yet
        self._warm: set[str] = set()
        self._running: set[str] = set()  # warm archs proposed and not yet told
        self._top: list[list[Any]] = []  # [arch, score] of the top_k, best first
        self.scoring_seconds = 0.0

    def _score_candidates(self) -> None:
        n = min(self.candidates, self.space.size)
        seen: dict[str, Arch] = {}
        tries = 0
        while len(seen) < n and tries < 50 * n:
            arch = self.space.sample(self.rng)
            seen.setdefault(arch_key(arch), arch)
            tries += 1
        start = time.perf_counter()
        scores = {key: float(self.scorer(arch)) for key, arch in seen.items()}
        self.scoring_seconds += time.perf_counter() - start
        top = topk_keys({key: v for key, v in scores.items() if math.isfinite(v)}, self.top_k)
        self._top = [[seen[key], scores[key]] for key in top]
        self._queue = [dict(seen[key]) for key in top]
        self._warm = set(top)
        _log.info("scored %d candidates in %.1f s; warm-starting with the best %d", len(seen), self.scoring_seconds, len(top))

    def ask(self) -> Arch | None:
        if self._queue is None:
            self._score_candidates()
        if self._queue:
            self._running.add(arch_key(self._queue[0]))
            return self._queue.pop(0)
        if self.strategy is None or self._running:
            return None  # the wrapped strategy starts from the warm results (and must not repeat a running one)
        return self.strategy.ask()

    def tell(self, trial: Trial) -> None:
        key = arch_key(trial.arch)
        self._running.discard(key)
        if self.strategy is None:
            return
        self.strategy.tell(trial)
        if key in self._warm and hasattr(self.strategy, "_n_random"):
            self.strategy._n_random += 1  # the warm archs stand in for its random initialisation

    def set_objectives(self, n: int) -> None:
        """Passed on to the wrapped strategy (multi-objective experiments); the proxy ranks the warm archs."""
        hook = getattr(self.strategy, "set_objectives", None)
        if callable(hook):
            hook(n)

    def on_report(self, trial: Trial, step: int, score: float) -> bool:
        return bool(self.strategy.on_report(trial, step, score)) if self.strategy is not None else False

    @property
    def top(self) -> list[tuple[Arch, float]]:
        """The ``top_k`` candidates and their proxy scores, best first."""
        return [(dict(a), float(s)) for a, s in self._top]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "warm": sorted(self._warm),
            "running": sorted(self._running),
            "scoring_seconds": self.scoring_seconds,
            "strategy": self.strategy.state_dict() if self.strategy is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._warm = set(state["warm"])
        self._running = set(state.get("running", []))
        self.scoring_seconds = float(state.get("scoring_seconds", 0.0))
        if self.strategy is not None and state.get("strategy") is not None:
            self.strategy.load_state_dict(state["strategy"])

    def __repr__(self) -> str:
        return f"ZeroCostWarmStart({self.strategy!r}, candidates={self.candidates}, top_k={self.top_k})"
