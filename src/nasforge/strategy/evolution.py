"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image
Classifier Architecture Search" (AAAI)."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from nasforge.pareto import nsga2_rank
from nasforge.space import Arch, Space, arch_key
from nasforge.strategy.base import (
    HistoryStrategy,
    MultiObjective,
    check_choice,
    check_fraction,
    check_positive_int,
)
from nasforge.trial import Trial

__all__ = ["RegularizedEvolution"]

_log = logging.getLogger("nasforge.strategy.evolution")


class RegularizedEvolution(MultiObjective, HistoryStrategy):
    """Aging evolution: tournament selection, mutation, and removal of the *oldest* member.

    The first ``population_size`` proposals are uniformly random. After that each ``ask``
    draws ``sample_size`` members of the population at random, takes the best of them as the
    parent and proposes a mutated copy: one choice (picked uniformly) always changes to another
    value, and every other choice also changes with probability ``mutation_prob``. When a
    child's result arrives it joins the population and the oldest member leaves it, whatever
    its score (the "regularisation" of the paper).

    ``dedup=True`` (default) never proposes an arch twice: a repeated child is re-drawn (and a
    random unseen arch is used after ``max_retries`` tries). ``on_failure`` decides what a
    failed trial does to the population: ``"ignore"`` leaves it out, ``"worst"`` adds it with
    the lowest possible score (it still ages out).

    Proposals made while earlier ones are still pending simply use the current population, so
    the strategy works with any number of concurrent trials.

    **Multi-objective mode (NSGA-II selection).** After ``set_objectives(n)`` with ``n >= 2``
    (the experiment calls it when given ``objectives=[...]``) trials are compared by their
    objective vectors (``trial.objectives``, larger is better): the tournament picks the
    contender with the best non-domination rank, then the largest crowding distance (Deb et al.
    2002's crowded comparison), and when a child joins a full population the member with the
    worst rank and smallest crowding distance leaves it (steady-state NSGA-II replacement,
    instead of the oldest). Mutation and de-duplication are unchanged.

    Example::

        strategy = RegularizedEvolution(population_size=20, sample_size=5)
    """

    _state_attrs = ("_n_random",)
    _repr_attrs = ("population_size", "sample_size", "mutation_prob")

    def __init__(
        self,
        population_size: int = 20,
        sample_size: int = 5,
        mutation_prob: float = 0.05,
        dedup: bool = True,
        on_failure: str = "ignore",
        max_retries: int = 50,
    ):
        self.population_size = check_positive_int("population_size", population_size)
        self.sample_size = check_positive_int("sample_size", sample_size)
        if self.sample_size > self.population_size:
            raise ValueError(
                f"sample_size ({sample_size}) must not exceed population_size ({population_size})"
            )
        self.mutation_prob = check_fraction("mutation_prob", mutation_prob)
        self.dedup = bool(dedup)
        self.on_failure = check_choice("on_failure", on_failure, ("ignore", "worst"))
        self.max_retries = check_positive_int("max_retries", max_retries)

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self._population: deque[list[Any]] = deque()  # [key, score] oldest first
        self._n_random = 0
        self._mo_pop: list[list[Any]] = []  # multi-objective mode: [key, objective vector], oldest first

    # -- multi-objective mode (NSGA-II) ---------------------------------------------------------------
    def _tell_nsga(self, trial: Trial) -> None:
        key, score = self._record(trial)
        vec = trial.objectives
        if score is None or vec is None or len(vec) != self._n_objectives:
            if score is not None:
                _log.warning("trial %s has no %d-objective vector; NSGA-II leaves it out", trial.id, self._n_objectives)
            return
        self._mo_pop.append([key, [float(v) for v in vec]])
        if len(self._mo_pop) > self.population_size:
            ranks = nsga2_rank([v for _, v in self._mo_pop])
            worst = max(range(len(self._mo_pop)), key=lambda i: (ranks[i][0], -ranks[i][1], -i))
            del self._mo_pop[worst]

    # -- proposals ----------------------------------------------------------------------------
    def _random(self) -> Arch | None:
        return self._random_unseen() if self.dedup else self.space.sample(self.rng)

    def _tournament(self) -> Arch:
        """The best of ``sample_size`` random members (multi-objective: by crowded comparison)."""
        pop = self._mo_pop if self._multi else list(self._population)
        size = min(self.sample_size, len(pop))
        picks = [int(i) for i in self.rng.choice(len(pop), size=size, replace=False)]
        if self._multi:
            ranks = nsga2_rank([v for _, v in pop])
            best = min(picks, key=lambda i: (ranks[i][0], -ranks[i][1], i))
        else:
            best = max(picks, key=lambda i: (pop[i][1], -i))
        return self._asked[pop[best][0]]

    def _mutate(self, parent: Arch) -> Arch:
        return self.space.mutate(parent, self.rng, n=1, prob=self.mutation_prob)

    def ask(self) -> Arch | None:
        if self.dedup and self._exhausted():
            return None
        if self._n_random < self.population_size or not (self._mo_pop if self._multi else self._population):
            arch = self._random()
            if arch is None:
                return None
            self._n_random += 1
            return self._propose(arch)
        parent = self._tournament()
        for attempt in range(self.max_retries):
            if attempt and attempt % 10 == 0:
                parent = self._tournament()
            child = self._mutate(parent)
            if not self.dedup or arch_key(child) not in self._asked:
                return self._propose(child)
        _log.debug("no unseen child after %d mutations; proposing a random unseen arch", self.max_retries)
        arch = self._random()
        return None if arch is None else self._propose(arch)

    def tell(self, trial: Trial) -> None:
        if self._multi:
            return self._tell_nsga(trial)
        key, score = self._record(trial)
        if score is None:
            if self.on_failure == "ignore":
                return
            score = float("-inf")
        self._population.append([key, score])
        while len(self._population) > self.population_size:
            self._population.popleft()

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        pop = [[k, s if s != float("-inf") else None] for k, s in self._population]
        state = {**super().state_dict(), "population": pop}
        if self._multi:
            state["mo_population"] = [[k, list(v)] for k, v in self._mo_pop]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._population = deque(
            [k, float("-inf") if s is None else float(s)] for k, s in state["population"]
        )
        self._mo_pop = [[k, [float(x) for x in v]] for k, v in state.get("mo_population", [])]
