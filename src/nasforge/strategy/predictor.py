"""Sequential model-based search with a learned surrogate: BANANAS-style ``PredictorBased``
(White et al. 2021, "BANANAS: Bayesian Optimization with Neural Architectures for Neural
Architecture Search") and PNAS-style ``Progressive`` (Liu et al. 2018, "Progressive Neural
Architecture Search"). Both use a numpy MLP ensemble on the one-hot arch encoding."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nasforge.space import Arch
from nasforge.strategy._common import (
    HistoryStrategy,
    arch_key,
    check_choice,
    check_positive_int,
    topk_keys,
)
from nasforge.strategy._surrogate import ACQUISITIONS, MLPEnsemble, acquisition
from nasforge.trial import Trial

__all__ = ["PredictorBased", "Progressive"]

_log = logging.getLogger("nasforge.strategy.predictor")


class _SurrogateMixin(HistoryStrategy):
    """Fits the ensemble on the told results, refitting once enough new results arrived."""

    n_models: int
    hidden: int
    epochs: int
    encoding: str
    refit_fraction: float

    def _init_surrogate(self) -> None:
        self._model: MLPEnsemble | None = None
        self._fitted_on = 0

    def _maybe_fit(self) -> bool:
        """(Re)fit when the number of results grew by ``max(1, n * refit_fraction)``."""
        n = len(self._scores)
        if n < 2:
            return False
        if self._model is not None and n - self._fitted_on < max(1, int(n * self.refit_fraction)):
            return True
        keys = list(self._scores)
        X = np.stack([self.space.encode(self._asked[k], self.encoding) for k in keys])
        y = np.array([self._scores[k] for k in keys])
        seed = int(self.rng.integers(2**63 - 1))
        self._model = MLPEnsemble(n_models=self.n_models, hidden=self.hidden, epochs=self.epochs).fit(
            X, y, np.random.default_rng(seed)
        )
        self._fitted_on = n
        self._fit_seed = seed
        return True

    def _predict(self, archs: list[Arch]) -> np.ndarray:
        X = np.stack([self.space.encode(a, self.encoding) for a in archs])
        assert self._model is not None
        return self._model.predict(X)

    def _surrogate_state(self) -> dict[str, Any]:
        return {"fitted_on": self._fitted_on, "fit_seed": getattr(self, "_fit_seed", None)}

    def _load_surrogate_state(self, state: dict[str, Any]) -> None:
        """Re-create the exact model from the seed it was fitted with and the same data."""
        self._model = None
        self._fitted_on = int(state["fitted_on"])
        seed = state.get("fit_seed")
        if seed is None or self._fitted_on < 2:
            self._fitted_on = 0
            return
        keys = list(self._scores)[: self._fitted_on]
        X = np.stack([self.space.encode(self._asked[k], self.encoding) for k in keys])
        y = np.array([self._scores[k] for k in keys])
        self._model = MLPEnsemble(n_models=self.n_models, hidden=self.hidden, epochs=self.epochs).fit(
            X, y, np.random.default_rng(int(seed))
        )
        self._fit_seed = int(seed)


class PredictorBased(_SurrogateMixin):
    """BANANAS-style Bayesian optimisation with an ensemble of neural predictors.

    After ``num_init`` random archs, every ``ask`` (re)fits an ensemble of ``n_models`` small
    MLPs to the results so far (one-hot encoding of the choices by default), generates
    candidates by mutating the ``num_parents`` best archs (``mutations_per_parent`` each, one
    or two choices changed) plus ``num_random`` random archs, and proposes the unseen candidate
    with the largest acquisition: ``"its"`` (independent Thompson sampling, BANANAS' choice),
    ``"ucb"``, ``"ei"`` or ``"mean"``. Concurrent asks exclude pending archs, so a batch is
    diverse; with ITS each ask draws fresh samples.

    To keep an ask cheap the ensemble is refitted only when the number of results has grown by
    ``refit_fraction`` (default 5 %, i.e. after every result early on and every 5th at 100).

    Example::

        strategy = PredictorBased(num_init=10, acquisition="its")
    """

    def __init__(
        self,
        num_init: int = 10,
        acquisition: str = "its",
        n_models: int = 5,
        hidden: int = 32,
        epochs: int = 150,
        num_parents: int = 10,
        mutations_per_parent: int = 20,
        num_random: int = 20,
        encoding: str = "onehot",
        refit_fraction: float = 0.05,
        beta: float = 0.5,
    ):
        self.num_init = check_positive_int("num_init", num_init, minimum=2)
        self.acquisition = check_choice("acquisition", acquisition, ACQUISITIONS)
        self.n_models = check_positive_int("n_models", n_models)
        self.hidden = check_positive_int("hidden", hidden)
        self.epochs = check_positive_int("epochs", epochs)
        self.num_parents = check_positive_int("num_parents", num_parents)
        self.mutations_per_parent = check_positive_int("mutations_per_parent", mutations_per_parent)
        self.num_random = check_positive_int("num_random", num_random, minimum=0)
        self.encoding = check_choice("encoding", encoding, ("onehot", "ordinal"))
        if not 0 <= refit_fraction < 1:
            raise ValueError(f"refit_fraction must be in [0, 1), got {refit_fraction!r}")
        self.refit_fraction = float(refit_fraction)
        self.beta = float(beta)

    def setup(self, space, seed=None) -> None:
        super().setup(space, seed)
        self._init_surrogate()
        self._n_random = 0

    def _candidates(self) -> list[Arch]:
        out: dict[str, Arch] = {}
        for key in topk_keys(self._scores, self.num_parents):
            parent = self._asked[key]
            for _ in range(self.mutations_per_parent):
                child = self.space.mutate(parent, self.rng, n=1 if self.rng.random() < 0.5 else 2)
                k = arch_key(child)
                if k not in self._asked:
                    out.setdefault(k, child)
        for _ in range(self.num_random):
            a = self.space.sample(self.rng)
            k = arch_key(a)
            if k not in self._asked:
                out.setdefault(k, a)
        return list(out.values())

    def ask(self) -> Arch | None:
        if self._exhausted():
            return None
        if self._n_random < self.num_init or not self._maybe_fit():
            arch = self._random_unseen()
            if arch is None:
                return None
            self._n_random += 1
            return self._propose(arch)
        cands = self._candidates()
        if not cands:
            arch = self._random_unseen()
            return None if arch is None else self._propose(arch)
        preds = self._predict(cands)
        best = max(self._scores.values())
        acq = acquisition(self.acquisition, preds, best, self.rng, beta=self.beta)
        return self._propose(cands[int(np.argmax(acq))])

    def tell(self, trial: Trial) -> None:
        self._record(trial)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_random": self._n_random, "surrogate": self._surrogate_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._n_random = int(state["n_random"])
        self._load_surrogate_state(state["surrogate"])

    def __repr__(self) -> str:
        return f"PredictorBased(num_init={self.num_init}, acquisition={self.acquisition!r}, n_models={self.n_models})"


class Progressive(_SurrogateMixin):
    """PNAS-style progressive search: decide the choices a few at a time, beam search guided by
    a surrogate.

    The labels (in ``order``, default the space's order) are split into stages of ``step``
    labels. Labels not yet decided take their value from ``base`` (default: each choice's first
    candidate — for cell spaces whose first op is ``none`` this means "edge absent", exactly
    PNAS' smaller cells). Stage 1 evaluates every value of the first stage's labels (up to
    ``beam_size`` × ``expand_limit`` of them). At each later stage the ``beam_size`` best
    archs evaluated so far are expanded with every value of the next stage's labels; the
    surrogate (an MLP ensemble refitted on all results) ranks the expansions and the top
    ``beam_size`` unseen ones are evaluated. Once every label is decided the search continues
    greedily: the surrogate's best unseen one-choice neighbours of the top archs.

    A stage's proposals are issued together (they can run concurrently); ``ask`` returns None
    while the stage's last results are pending.

    Example::

        strategy = Progressive(beam_size=16, order=["op_3_0", "op_3_1", ...])
    """

    def __init__(
        self,
        beam_size: int = 16,
        step: int = 1,
        order: list[str] | None = None,
        base: dict[str, Any] | None = None,
        n_models: int = 5,
        hidden: int = 32,
        epochs: int = 150,
        expand_limit: int = 64,
        encoding: str = "onehot",
        refit_fraction: float = 0.05,
    ):
        self.beam_size = check_positive_int("beam_size", beam_size)
        self.step = check_positive_int("step", step)
        self.order = list(order) if order is not None else None
        self.base = dict(base) if base is not None else None
        self.n_models = check_positive_int("n_models", n_models)
        self.hidden = check_positive_int("hidden", hidden)
        self.epochs = check_positive_int("epochs", epochs)
        self.expand_limit = check_positive_int("expand_limit", expand_limit)
        self.encoding = check_choice("encoding", encoding, ("onehot", "ordinal"))
        if not 0 <= refit_fraction < 1:
            raise ValueError(f"refit_fraction must be in [0, 1), got {refit_fraction!r}")
        self.refit_fraction = float(refit_fraction)

    def setup(self, space, seed=None) -> None:
        super().setup(space, seed)
        order = self.order if self.order is not None else space.labels
        unknown = [label for label in order if label not in space]
        if unknown or sorted(order) != sorted(space.labels):
            raise ValueError(
                f"Progressive: order must list each of the space's labels once; got {order!r}, "
                f"the labels are {space.labels!r}"
            )
        self._order = list(order)
        self._base = space.validate(self.base) if self.base is not None else space.default()
        self._stages = [self._order[i : i + self.step] for i in range(0, len(self._order), self.step)]
        self._stage = -1  # index of the last stage whose proposals were issued
        self._queue: list[Arch] = []
        self._stage_keys: list[str] = []  # archs issued by the current stage
        self._init_surrogate()

    def _decided(self, stage: int) -> list[str]:
        return [label for s in self._stages[: stage + 1] for label in s]

    def _expansions(self, parents: list[Arch], labels: list[str]) -> list[Arch]:
        out: dict[str, Arch] = {}
        for parent in parents:
            combos: list[Arch] = [dict(parent)]
            for label in labels:
                combos = [{**c, label: v} for c in combos for v in self.space[label].values]
            for c in combos:
                if self.space.conditional:  # labels the expansion activates are drawn at random
                    c = self._canonical(self.space.complete(c, self.rng))
                k = arch_key(c)
                if k not in self._asked:
                    out.setdefault(k, c)
        return list(out.values())

    def _issue_stage(self) -> bool:
        """Prepare the next stage's proposals; False when nothing more can be proposed."""
        nxt = self._stage + 1
        if nxt < len(self._stages):
            labels = self._stages[nxt]
            if nxt == 0 or not self._scores:
                parents = [self._base]
            else:
                parents = [self._asked[k] for k in topk_keys(self._scores, self.beam_size)]
            cands = self._expansions(parents, labels)
            if nxt == 0:
                limit = self.beam_size * self.expand_limit
                chosen = cands if len(cands) <= limit else [cands[int(i)] for i in self.rng.choice(len(cands), limit, replace=False)]
            else:
                chosen = self._rank(cands)[: self.beam_size]
            self._stage = nxt
        else:  # every label decided: greedy surrogate-ranked neighbours of the best archs
            parents = [self._asked[k] for k in topk_keys(self._scores, self.beam_size)]
            cands = {arch_key(a): a for p in parents for a in self.space.neighbors(p) if arch_key(a) not in self._asked}
            chosen = self._rank(list(cands.values()))[: self.beam_size]
            if not chosen:
                arch = self._random_unseen()
                chosen = [] if arch is None else [arch]
        self._queue = chosen
        self._stage_keys = [arch_key(a) for a in chosen]
        if not chosen and nxt < len(self._stages):  # nothing new in this stage (e.g. a one-value label)
            return self._issue_stage()
        return bool(chosen)

    def _rank(self, cands: list[Arch]) -> list[Arch]:
        if not cands:
            return []
        if len(cands) > self.beam_size * self.expand_limit:
            idx = self.rng.choice(len(cands), self.beam_size * self.expand_limit, replace=False)
            cands = [cands[int(i)] for i in idx]
        if not self._maybe_fit():
            perm = self.rng.permutation(len(cands))
            return [cands[int(i)] for i in perm]
        mean = self._predict(cands).mean(axis=0)
        return [cands[int(i)] for i in np.argsort(-mean, kind="stable")]

    def ask(self) -> Arch | None:
        while True:
            while self._queue:
                arch = self._queue.pop(0)
                if arch_key(arch) not in self._asked:
                    return self._propose(arch)
            if self._exhausted():
                return None
            if any(k in self._pending for k in self._stage_keys):
                return None  # the next stage needs this stage's results
            if not self._issue_stage():
                return None

    def tell(self, trial: Trial) -> None:
        self._record(trial)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "stage": self._stage,
            "queue": [dict(a) for a in self._queue],
            "stage_keys": list(self._stage_keys),
            "surrogate": self._surrogate_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._stage = int(state["stage"])
        self._queue = [dict(a) for a in state["queue"]]
        self._stage_keys = list(state["stage_keys"])
        self._load_surrogate_state(state["surrogate"])

    def __repr__(self) -> str:
        return f"Progressive(beam_size={self.beam_size}, step={self.step})"
