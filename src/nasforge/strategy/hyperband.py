"""Multi-fidelity early stopping around any strategy: asynchronous successive halving
(Jamieson & Talwalkar 2016; Li et al. 2020, "ASHA") and Hyperband (Li et al. 2018)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from nasforge.space import Arch, Space
from nasforge.strategy.base import Strategy, check_positive_int
from nasforge.trial import Trial

__all__ = ["SuccessiveHalving", "Hyperband"]


class SuccessiveHalving(Strategy):
    """Wrap a strategy and stop weak trials at rungs ``min_step · eta^k`` of the reported steps.

    Proposals come from ``strategy`` (any strategy; it is also told every result, including
    stopped trials with the score they had when stopped). When a trial reports at or past a
    rung, its score is recorded there; it goes on only if it is among the top ``1/eta`` of the
    scores recorded at that rung so far (asynchronous successive halving: no waiting for a full
    rung). A rung makes no decision until it holds ``grace`` scores (default ``eta``).

    The evaluator must report the main metric with ``ctx.report(step, ...)``; ``min_step`` and
    ``max_step`` count in those steps. The built-in evaluators (``Classification``,
    ``Regression``, ``Supervised``) report after every epoch with step = epochs completed
    (1, 2, … ``epochs``), so the steps are epochs: ``max_step`` should be the evaluator's
    ``epochs`` (the full budget of one trial) and ``min_step`` the epochs a trial gets before its
    first comparison. Rungs lie strictly below ``max_step``. A warning says when rungs lie beyond
    the last step the evaluator reports (e.g. ``max_step=81`` with 9 epochs): those rungs are
    never reached and stop nothing.

    Example::

        strategy = SuccessiveHalving(RegularizedEvolution(), min_step=1, max_step=27, eta=3)
    """

    _state_attrs: tuple[str, ...] = ("stopped", "_passed")

    def __init__(
        self,
        strategy: Strategy,
        min_step: int = 1,
        max_step: int | None = None,
        eta: int = 3,
        grace: int | None = None,
    ):
        if not isinstance(strategy, Strategy):
            raise TypeError(f"{type(self).__name__} wraps a Strategy, got {type(strategy).__name__}")
        self.strategy = strategy
        self.min_step = check_positive_int("min_step", min_step)
        if max_step is not None and (not isinstance(max_step, int) or max_step < min_step):
            raise ValueError(f"max_step must be None or an integer >= min_step ({min_step}), got {max_step!r}")
        self.max_step = max_step
        self.eta = check_positive_int("eta", eta, minimum=2)
        self.grace = check_positive_int("grace", grace if grace is not None else eta)

    def _unreachable(self, last_step: int) -> list[int]:
        if self.max_step is None:  # open-ended rungs: only a first rung past the end is a mistake
            return [self.min_step] if self.min_step > last_step else []
        return sorted({r for steps in self._bracket_steps() for r in steps[1:] if r > last_step})

    def check_reported_steps(self, last_step: int) -> None:
        """Warn when rungs lie beyond ``last_step``, the last step the evaluator reports (its epochs)."""
        rungs = self._unreachable(int(last_step))
        if rungs and not getattr(self, "_warned_steps", False):
            self._warned_steps = True
            warnings.warn(
                f"{type(self).__name__}: max_step={self.max_step} (min_step={self.min_step}, eta={self.eta}) but the "
                f"evaluator reports steps up to {last_step} (its epochs); rung(s) at step {', '.join(map(str, rungs))} are "
                f"never reached and stop nothing. Set max_step to the evaluator's epochs (max_step={last_step})"
                + (", or train longer" if self.min_step <= last_step else "; min_step is past the last step, so no trial is ever stopped"),
                UserWarning,
                stacklevel=3,
            )

    def _rung_steps(self, first: int) -> list[int]:
        # index 0 is a sentinel "not yet at any rung"; rungs strictly below max_step
        steps = [0]
        r = first
        while self.max_step is None or r < self.max_step:
            steps.append(r)
            r *= self.eta
            if self.max_step is None and len(steps) > 64:
                break
        return steps

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self.strategy.setup(space, seed)
        self._steps = self._bracket_steps()
        # the scores recorded at each bracket's rungs
        self._records: list[list[list[float]]] = [[[] for _ in steps] for steps in self._steps]
        self._passed: dict[str, list[int]] = {}  # trial id -> [bracket, rung index passed]
        self.stopped = 0

    def _bracket_steps(self) -> list[list[int]]:
        """The rung steps of each bracket."""
        return [self._rung_steps(self.min_step)]

    def _decide(self, bracket: int, passed: int, step: int, score: float) -> tuple[int, bool]:
        """Record ``score`` at every rung of ``bracket`` that ``step`` reached beyond ``passed``;
        True to stop."""
        steps, records = self._steps[bracket], self._records[bracket]
        stop = False
        while passed + 1 < len(steps) and step >= steps[passed + 1]:
            passed += 1
            rec = records[passed]
            rec.append(score)
            n = len(rec)
            if n >= self.grace and not stop:
                threshold = sorted(rec, reverse=True)[max(1, n // self.eta) - 1]
                stop = score < threshold
        return passed, stop

    def _bracket_of(self, trial: Trial) -> int:
        return 0

    def ask(self) -> Arch | None:
        return self.strategy.ask()

    def tell(self, trial: Trial) -> None:
        self._passed.pop(str(trial.id), None)
        if trial.status.value == "SUCCEEDED" and trial.reports:
            self.check_reported_steps(max(int(step) for step, _ in trial.reports))  # a full trial's last step
        self.strategy.tell(trial)

    def on_report(self, trial: Trial, step: int, score: float) -> bool:
        if score is None or (isinstance(score, float) and math.isnan(score)):
            return False
        if self.strategy.on_report(trial, step, score):
            return True
        tid = str(trial.id)
        if tid not in self._passed:
            self._passed[tid] = [self._bracket_of(trial), 0]
        bracket, passed = self._passed[tid]
        passed, stop = self._decide(bracket, passed, int(step), float(score))
        self._passed[tid][1] = passed
        if stop:
            self.stopped += 1
        return stop

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "inner": self.strategy.state_dict(),
            "records": list(self._records),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.strategy.load_state_dict(state["inner"])
        for i, rec in enumerate(state["records"][: len(self._records)]):
            self._records[i] = [[float(x) for x in r] for r in rec]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strategy!r}, min_step={self.min_step}, max_step={self.max_step}, eta={self.eta})"


class Hyperband(SuccessiveHalving):
    """Hyperband: several successive-halving brackets with different first rungs.

    Bracket ``b`` (``b = 0 … s_max``, ``s_max = floor(log_eta(max_step / min_step))``) starts
    stopping at step ``min_step · eta^b``; bracket 0 is the most aggressive. Each new trial
    joins a bracket at random (seeded by the strategy's seed and the trial id) with Hyperband's
    proportions ``n_b ∝ eta^(s_max-b) / (s_max-b+1)``, so cheap exploratory brackets get more
    trials. ``max_step`` (the full budget in reported steps, e.g. epochs) is required.

    Example::

        strategy = Hyperband(Random(dedup=True), min_step=1, max_step=81, eta=3)
    """

    _state_attrs = ("stopped", "_passed", "_seed")

    def __init__(self, strategy: Strategy, min_step: int = 1, max_step: int = 81, eta: int = 3, grace: int | None = None):
        if max_step is None:
            raise ValueError("Hyperband needs max_step (the full budget in reported steps, e.g. the epoch count)")
        super().__init__(strategy, min_step=min_step, max_step=max_step, eta=eta, grace=grace)
        self.s_max = int(math.floor(math.log(max_step / min_step, eta) + 1e-9))

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self._seed = int(self.rng.integers(2**31 - 1))
        s = self.s_max
        w = np.array([self.eta ** (s - b) / (s - b + 1) for b in range(s + 1)], dtype=float)
        self._weights = w / w.sum()

    def _bracket_steps(self) -> list[list[int]]:
        return [self._rung_steps(self.min_step * self.eta**b) for b in range(self.s_max + 1)]

    def _bracket_of(self, trial: Trial) -> int:
        rng = np.random.default_rng([self._seed, abs(int(trial.id))])
        return int(rng.choice(len(self._weights), p=self._weights))
