"""Tree-structured Parzen estimator (Bergstra et al. 2011) through Optuna's ``TPESampler``.

Optuna is imported when the strategy is set up, not when :mod:`nasforge.strategy` is imported.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any, cast

from nasforge.space import Arch, Space, arch_key
from nasforge.strategy._common import check_positive_int
from nasforge.strategy.base import HistoryStrategy
from nasforge.trial import Trial

__all__ = ["TPE"]

_log = logging.getLogger("nasforge.strategy.tpe")


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO lines and experimental warnings, restoring them after."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class TPE(HistoryStrategy):
    """TPE via Optuna's ask/tell interface; each label is one categorical parameter.

    ``sampler_options`` go to :class:`optuna.samplers.TPESampler` (e.g. ``multivariate=True``,
    ``n_ei_candidates=24``, ``constant_liar=True`` — Optuna's default, which makes concurrent
    asks diverse). The sampler is re-seeded from this strategy's generator on every ask, so the
    proposals depend only on the seed and the history: saving and restoring the state (which
    holds the history, not Optuna objects) gives the same future proposals.

    With ``dedup=True`` (default) an arch is proposed at most once: when TPE suggests an arch
    already evaluated, Optuna is told its known score for free and asked again; after
    ``max_retries`` repeats a random unseen arch is proposed (and recorded in the study).

    Example::

        strategy = TPE(n_startup_trials=10)
    """

    def __init__(self, n_startup_trials: int = 10, dedup: bool = True, max_retries: int = 10, **sampler_options: Any):
        self.n_startup_trials = check_positive_int("n_startup_trials", n_startup_trials, minimum=0)
        self.dedup = bool(dedup)
        self.max_retries = check_positive_int("max_retries", max_retries)
        if "seed" in sampler_options:
            raise ValueError("TPE: do not pass 'seed' in sampler_options; the strategy's seed (setup) is used")
        self.sampler_options = dict(sampler_options)
        try:  # validate the options early, with Optuna's own message
            import optuna

            with _quiet_optuna():
                optuna.samplers.TPESampler(n_startup_trials=self.n_startup_trials, **self.sampler_options)
        except TypeError as exc:
            raise ValueError(f"TPE: invalid sampler_options {sorted(sampler_options)}: {exc}") from None

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        import optuna

        self._optuna = optuna
        self._labels = space.labels
        self._order = [label for label in space._order()] if space.conditional else self._labels
        self._dists: dict[str, Any] = {
            label: optuna.distributions.CategoricalDistribution(tuple(range(len(space[label]))))
            for label in self._labels
        }
        # entries in ask order: [params {label: index} of the active labels, state ("pending"|"done"|"fail"), value]
        self._entries: list[list[Any]] = []
        self._vectors: dict[str, list[float]] = {}  # multi-objective mode: key -> objective vector
        self._new_study()

    def _new_study(self) -> None:
        with _quiet_optuna():
            n = getattr(self, "_n_objectives", 1)
            if n > 1:  # Optuna's multi-objective TPE (MOTPE)
                self._study = self._optuna.create_study(directions=["maximize"] * n, sampler=self._sampler(0))
            else:
                self._study = self._optuna.create_study(direction="maximize", sampler=self._sampler(0))

    def set_objectives(self, n: int) -> None:
        """Multi-objective mode for ``n >= 2``: Optuna's multi-objective TPE on ``trial.objectives``
        (larger is better); call before any ask (before or after :meth:`setup`: it persists across it)."""
        self._n_objectives = check_positive_int("n", n)
        if hasattr(self, "_entries") and not self._entries:
            self._new_study()

    def _value(self, trial: Trial, score: float | None) -> float | list[float] | None:
        """What Optuna is told: the score, or the objective vector in multi-objective mode."""
        if getattr(self, "_n_objectives", 1) <= 1 or score is None:
            return score
        vec = trial.objectives
        if vec is None or len(vec) != self._n_objectives:
            return None
        self._vectors[arch_key(trial.arch)] = [float(v) for v in vec]
        return [float(v) for v in vec]

    def _sampler(self, seed: int) -> Any:
        return self._optuna.samplers.TPESampler(
            n_startup_trials=self.n_startup_trials, seed=seed, **self.sampler_options
        )

    # -- ask/tell ------------------------------------------------------------------------------
    def _optuna_ask(self, params: dict[str, int] | None = None, reseed: bool = True) -> tuple[Any, dict[str, int]]:
        """An Optuna trial and the candidate index of each *active* label.

        In a conditional space the parameters are suggested one by one, only for the labels
        active given the values already drawn, so TPE never learns from a label that did not
        shape the network (Optuna models each parameter from the trials that used it).
        """
        if params is not None:
            self._study.enqueue_trial(params)
        if reseed:
            self._reseed(int(self.rng.integers(2**31 - 1)))
        if not self.space.conditional:
            t = self._study.ask(self._dists)
            return t, {label: int(t.params[label]) for label in self._labels}
        t = self._study.ask()
        partial: dict[str, Any] = {}
        chosen: dict[str, int] = {}
        for label in self._order:
            if not self.space.is_active(label, partial):
                continue
            i = int(cast(int, t.suggest_categorical(label, self._dists[label].choices)))
            chosen[label] = i
            partial[label] = self.space[label].key_at(i)
        return t, chosen

    def _params(self, arch: dict[str, Any]) -> dict[str, int]:
        return {label: self.space[label].index(v) for label, v in self.space.canonical(arch).items()}

    def _arch(self, params: dict[str, int]) -> Arch:
        return self.space.canonical({label: self.space[label].key_at(i) for label, i in params.items()})

    def _reseed(self, seed: int) -> None:
        """Seed the sampler's generators for this ask, keeping its (deterministic) caches."""
        sampler: Any = self._study.sampler  # Optuna's private layout, checked below
        try:
            sampler._rng.rng.seed(seed)
            sampler._random_sampler._rng.rng.seed(seed)
        except AttributeError:  # another Optuna layout: a fresh sampler is equivalent, only slower
            self._study.sampler = self._sampler(seed)

    def ask(self) -> Arch | None:
        if self.dedup and self._exhausted():
            return None
        tt = self._optuna.trial.TrialState
        with _quiet_optuna():
            for _ in range(self.max_retries):
                t, params = self._optuna_ask()
                arch = self._arch(params)
                key = arch_key(arch)
                if not self.dedup or key not in self._asked:
                    self._entries.append([params, "pending", None])
                    return self._propose(arch)
                known = self._vectors.get(key) if getattr(self, "_n_objectives", 1) > 1 else self._scores.get(key)
                if known is not None:  # a repeat of a known result: tell it, costs nothing
                    self._study.tell(t, known)
                    self._entries.append([params, "done", known])
                else:
                    self._study.tell(t, state=tt.FAIL)
                    self._entries.append([params, "fail", None])
            fallback = self._random_unseen()
            if fallback is None:
                return None
            _log.debug("TPE repeated known archs %d times; proposing a random unseen one", self.max_retries)
            params = self._params(fallback)
            self._optuna_ask(params)
            self._entries.append([params, "pending", None])
            return self._propose(fallback)

    def tell(self, trial: Trial) -> None:
        value = self._value(trial, self._record(trial)[1])
        params = self._params(trial.arch)
        tt = self._optuna.trial.TrialState
        number = next(
            (i for i, e in enumerate(self._entries) if e[1] == "pending" and e[0] == params), None
        )
        with _quiet_optuna():
            if number is None:  # told about a trial this strategy did not propose: learn from it
                self._study.add_trial(self._frozen(params, value))
                self._entries.append([params, "done" if value is not None else "fail", value])
                return
            if value is None:
                self._study.tell(number, state=tt.FAIL)
                self._entries[number][1:] = ["fail", None]
            else:
                self._study.tell(number, value)
                self._entries[number][1:] = ["done", value]

    def _frozen(self, params: dict[str, int], score: float | list[float] | None) -> Any:
        tt = self._optuna.trial.TrialState
        value, values = (None, list(score)) if isinstance(score, (list, tuple)) else (score, None)
        return self._optuna.trial.create_trial(
            params=dict(params),
            distributions={label: self._dists[label] for label in params},
            value=value,
            values=values,
            state=tt.COMPLETE if score is not None else tt.FAIL,
        )

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "entries": [list(e) for e in self._entries]}
        if getattr(self, "_n_objectives", 1) > 1:
            state["vectors"] = {k: list(v) for k, v in self._vectors.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        rng = self.rng
        self._entries = [[_as_params(e[0], self._labels), e[1], e[2]] for e in state["entries"]]
        self._vectors = {k: [float(x) for x in v] for k, v in state.get("vectors", {}).items()}
        self._new_study()
        with _quiet_optuna():
            for params, status, value in self._entries:
                if status == "pending":  # re-open it as a running trial (same number)
                    self._optuna_ask(params, reseed=False)
                else:
                    self._study.add_trial(self._frozen(params, value if status == "done" else None))
        self.rng = rng

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.sampler_options.items())
        return f"TPE(n_startup_trials={self.n_startup_trials}{opts})"


def _as_params(saved: Any, labels: list[str]) -> dict[str, int]:
    """Entries' parameters from a saved state (a dict; states before conditions held a list)."""
    if isinstance(saved, dict):
        return {str(k): int(v) for k, v in saved.items()}
    return {label: int(i) for label, i in zip(labels, saved)}
