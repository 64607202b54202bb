"""Sequential model-based search with a learned surrogate: BANANAS-style ``PredictorBased``
(White et al. 2021, "BANANAS: Bayesian Optimization with Neural Architectures for Neural
Architecture Search") and PNAS-style ``Progressive`` (Liu et al. 2018, "Progressive Neural
Architecture Search"). Both learn a :class:`~nasforge.strategy.Surrogate` (default: a numpy MLP
ensemble) on the arch encoding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from nasforge.space import Arch, Space, arch_key
from nasforge.strategy._surrogate import ACQUISITIONS, MLPEnsemble, Surrogate, acquisition
from nasforge.strategy.base import HistoryStrategy, check_choice, check_positive_int, topk_keys

__all__ = ["PredictorBased", "Progressive"]


class _SurrogateMixin(HistoryStrategy):
    """Fits the surrogate on the told results, refitting once enough new results arrived."""

    def _surrogate_args(
        self, surrogate: Surrogate | None, n_models: int, hidden: int, epochs: int, encoding: str, refit_fraction: float
    ) -> None:
        if surrogate is None:
            n_models = check_positive_int("n_models", n_models)
            surrogate = MLPEnsemble(n_models, check_positive_int("hidden", hidden), epochs=check_positive_int("epochs", epochs))
        missing = [m for m in ("fit", "predict") if not callable(getattr(surrogate, m, None))]
        if missing:
            raise TypeError(
                f"surrogate must follow nasforge.strategy.Surrogate (fit(X, y) and predict(X) -> (mean, std)); "
                f"{type(surrogate).__name__} has no {' or '.join(missing)}()"
            )
        self.surrogate = surrogate
        self.encoding = check_choice("encoding", encoding, ("onehot", "ordinal"))
        if not 0 <= refit_fraction < 1:
            raise ValueError(f"refit_fraction must be in [0, 1), got {refit_fraction!r}")
        self.refit_fraction = float(refit_fraction)

    def _init_surrogate(self) -> None:
        self._fitted_on = 0  # number of results the surrogate was last fitted on (0: not fitted)
        self._fit_seed: int | None = None
        self._feature_cache: dict[str, np.ndarray] = {}
        self._feature_norm: tuple[np.ndarray, np.ndarray] | None = None

    def _encode(self, archs: list[Arch], fit: bool = False) -> np.ndarray:
        """The encoding of ``archs``, with the standardised extra ``features`` appended if given."""
        X = np.stack([self.space.encode(a, self.encoding) for a in archs])
        features = getattr(self, "features", None)
        if features is None:
            return X
        rows = []
        for a in archs:
            k = arch_key(a)
            if k not in self._feature_cache:
                self._feature_cache[k] = np.atleast_1d(np.asarray(features(a), dtype=np.float64))
            rows.append(self._feature_cache[k])
        F = np.nan_to_num(np.stack(rows), nan=0.0, posinf=0.0, neginf=0.0)
        if fit or self._feature_norm is None:
            sd = F.std(axis=0)
            self._feature_norm = (F.mean(axis=0), np.where(sd > 0, sd, 1.0))
        mu, sd = self._feature_norm
        return np.concatenate([X, (F - mu) / sd], axis=1)

    def _fit(self, n: int, seed: int) -> None:
        """Fit the surrogate on the first ``n`` results, seeded with ``seed``."""
        keys = list(self._scores)[:n]
        set_seed = getattr(self.surrogate, "set_seed", None)
        if callable(set_seed):
            set_seed(seed)
        self.surrogate.fit(self._encode([self._asked[k] for k in keys], fit=True), np.array([self._scores[k] for k in keys]))
        self._fitted_on, self._fit_seed = n, seed

    def _maybe_fit(self) -> bool:
        """(Re)fit when the number of results grew by ``max(1, n * refit_fraction)``."""
        n = len(self._scores)
        if n < 2:
            return False
        if not self._fitted_on or n - self._fitted_on >= max(1, int(n * self.refit_fraction)):
            self._fit(n, int(self.rng.integers(2**63 - 1)))
        return True

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's predicted (mean, std) of ``archs``."""
        if not self._fitted_on:
            raise RuntimeError(f"{type(self).__name__}: the surrogate is used before it was fitted")
        mean, std = self.surrogate.predict(self._encode(archs))
        return np.asarray(mean, dtype=np.float64).reshape(-1), np.asarray(std, dtype=np.float64).reshape(-1)

    def _unseen(self, archs: Iterable[Arch]) -> list[Arch]:
        """``archs`` never proposed before, each network once (its first occurrence), in order."""
        out: dict[str, Arch] = {}
        for arch in archs:
            key = arch_key(arch)
            if key not in self._asked:
                out.setdefault(key, arch)
        return list(out.values())

    def state_dict(self) -> dict[str, Any]:
        surrogate = {"fitted_on": self._fitted_on, "fit_seed": self._fit_seed}
        return {**super().state_dict(), "surrogate": surrogate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the history, then re-create the exact model from the seed it was fitted with
        and the same data."""
        super().load_state_dict(state)
        self._init_surrogate()
        surrogate = state["surrogate"]
        if surrogate.get("fit_seed") is not None and int(surrogate["fitted_on"]) >= 2:
            self._fit(int(surrogate["fitted_on"]), int(surrogate["fit_seed"]))


class PredictorBased(_SurrogateMixin):
    """BANANAS-style Bayesian optimisation with an ensemble of neural predictors.

    After ``num_init`` random archs, every ``ask`` (re)fits an ensemble of ``n_models`` small
    MLPs to the results so far (one-hot encoding of the choices by default), generates
    candidates by mutating the ``num_parents`` best archs (``mutations_per_parent`` each, one
    or two choices changed) plus ``num_random`` random archs, and proposes the unseen candidate
    with the largest acquisition: ``"its"`` (independent Thompson sampling, BANANAS' choice),
    ``"ucb"``, ``"ei"`` or ``"mean"``. Concurrent asks exclude pending archs, so a batch is
    diverse; with ITS each ask draws fresh samples.

    ``surrogate``: any :class:`~nasforge.strategy.Surrogate` (``fit(X, y)``, ``predict(X) ->
    (mean, std)``), e.g. a Gaussian process; ``n_models``, ``hidden`` and ``epochs`` configure
    the default, an :class:`~nasforge.strategy.MLPEnsemble`.

    To keep an ask cheap the ensemble is refitted only when the number of results has grown by
    ``refit_fraction`` (default 5 %, i.e. after every result early on and every 5th at 100).

    ``features``: an optional ``arch -> float | list[float]`` (e.g. zero-cost proxy scores,
    :class:`nasforge.evaluate.proxies.ProxyScorer` with ``.features``) appended, standardised,
    to the encoding the predictor learns from; computed once per arch.

    Example::

        strategy = PredictorBased(num_init=10, acquisition="its")
        strategy = PredictorBased(surrogate=MyGaussianProcess(), acquisition="ei")
        strategy = PredictorBased(features=ProxyScorer(model_space, ["synflow", "naswot"], batch, transform="log").features)
    """

    _state_attrs = ("_n_random",)
    _repr_attrs = ("num_init", "acquisition", "surrogate")

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
        features: Any = None,
        surrogate: Surrogate | None = None,
    ):
        if features is not None and not callable(features):
            raise TypeError(f"features must be a callable arch -> float | list[float], got {type(features).__name__}")
        self.features = features
        self.num_init = check_positive_int("num_init", num_init, minimum=2)
        self.acquisition = check_choice("acquisition", acquisition, ACQUISITIONS)
        self._surrogate_args(surrogate, n_models, hidden, epochs, encoding, refit_fraction)
        self.num_parents = check_positive_int("num_parents", num_parents)
        self.mutations_per_parent = check_positive_int("mutations_per_parent", mutations_per_parent)
        self.num_random = check_positive_int("num_random", num_random, minimum=0)
        self.beta = float(beta)

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        self._init_surrogate()
        self._n_random = 0

    def _candidates(self) -> list[Arch]:
        parents = [self._asked[key] for key in topk_keys(self._scores, self.num_parents)]
        children = [
            self.space.mutate(parent, self.rng, n=1 if self.rng.random() < 0.5 else 2)
            for parent in parents
            for _ in range(self.mutations_per_parent)
        ]
        samples = [self.space.sample(self.rng) for _ in range(self.num_random)]
        return self._unseen(children + samples)

    def ask(self) -> Arch | None:
        if self._exhausted():
            return None
        initial = self._n_random < self.num_init or not self._maybe_fit()
        cands = [] if initial else self._candidates()
        if not cands:  # the random initialisation, or no unseen candidate
            arch = self._random_unseen()
            if arch is None:
                return None
            if initial:
                self._n_random += 1
            return self._propose(arch)
        mean, std = self._predict(cands)
        acq = acquisition(self.acquisition, mean, std, max(self._scores.values()), self.rng, beta=self.beta)
        return self._propose(cands[int(np.argmax(acq))])


class Progressive(_SurrogateMixin):
    """PNAS-style progressive search: decide the choices a few at a time, beam search guided by
    a surrogate.

    The labels (in ``order``, default the space's order) are split into stages of ``step``
    labels. Labels not yet decided take their value from ``base`` (default: each choice's first
    candidate — for cell spaces whose first op is ``none`` this means "edge absent", exactly
    PNAS' smaller cells). Stage 1 evaluates every value of the first stage's labels (up to
    ``beam_size`` × ``expand_limit`` of them). At each later stage the ``beam_size`` best
    archs evaluated so far are expanded with every value of the next stage's labels; the
    surrogate (``surrogate``, default an MLP ensemble; refitted on all results) ranks the expansions and the top
    ``beam_size`` unseen ones are evaluated. Once every label is decided the search continues
    greedily: the surrogate's best unseen one-choice neighbours of the top archs.

    A stage's proposals are issued together (they can run concurrently); ``ask`` returns None
    while the stage's last results are pending.

    Example::

        strategy = Progressive(beam_size=16, order=["op_3_0", "op_3_1", ...])
    """

    _state_attrs = ("_stage", "_queue", "_stage_keys")
    _repr_attrs = ("beam_size", "step")

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
        surrogate: Surrogate | None = None,
    ):
        self.beam_size = check_positive_int("beam_size", beam_size)
        self.step = check_positive_int("step", step)
        self.order = list(order) if order is not None else None
        self.base = dict(base) if base is not None else None
        self.expand_limit = check_positive_int("expand_limit", expand_limit)
        self._surrogate_args(surrogate, n_models, hidden, epochs, encoding, refit_fraction)

    def setup(self, space: Space, seed: int | None = None) -> None:
        super().setup(space, seed)
        order = self.order if self.order is not None else space.labels
        unknown = [label for label in order if label not in space]
        if unknown or sorted(order) != sorted(space.labels):
            raise ValueError(
                f"Progressive: order must list each of the space's labels once; got {order!r}, "
                f"the labels are {space.labels!r}"
            )
        self._base = space.validate(self.base) if self.base is not None else space.default()
        self._stages = [list(order[i : i + self.step]) for i in range(0, len(order), self.step)]
        self._stage = -1  # index of the last stage whose proposals were issued
        self._queue: list[Arch] = []
        self._stage_keys: list[str] = []  # archs issued by the current stage
        self._init_surrogate()

    def _expansions(self, parents: list[Arch], labels: list[str]) -> list[Arch]:
        expanded: list[Arch] = []
        for parent in parents:
            combos: list[Arch] = [dict(parent)]
            for label in labels:
                combos = [{**c, label: v} for c in combos for v in self.space[label].values]
            if self.space.conditional:  # labels the expansion activates are drawn at random
                combos = [self._canonical(self.space.complete(c, self.rng)) for c in combos]
            expanded += combos
        return self._unseen(expanded)

    def _at_most(self, cands: list[Arch]) -> list[Arch]:
        """``cands``, or a random ``beam_size * expand_limit`` of them when there are more."""
        limit = self.beam_size * self.expand_limit
        if len(cands) <= limit:
            return cands
        return [cands[int(i)] for i in self.rng.choice(len(cands), limit, replace=False)]

    def _issue_stage(self) -> bool:
        """Prepare the next stage's proposals; False when nothing more can be proposed."""
        nxt = self._stage + 1
        best = [self._asked[k] for k in topk_keys(self._scores, self.beam_size)]
        if nxt < len(self._stages):
            cands = self._expansions(best if nxt and best else [self._base], self._stages[nxt])
            chosen = self._at_most(cands) if nxt == 0 else self._rank(cands)[: self.beam_size]
            self._stage = nxt
        else:  # every label decided: greedy surrogate-ranked neighbours of the best archs
            neighbours = self._unseen(a for p in best for a in self.space.neighbors(p))
            chosen = self._rank(neighbours)[: self.beam_size]
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
        cands = self._at_most(cands)
        if not self._maybe_fit():
            return [cands[int(i)] for i in self.rng.permutation(len(cands))]
        return [cands[int(i)] for i in np.argsort(-self._predict(cands)[0], kind="stable")]

    def ask(self) -> Arch | None:
        while True:
            while self._queue:
                arch = self._queue.pop(0)
                if arch_key(arch) not in self._asked:
                    return self._propose(arch)
            if self._exhausted() or any(k in self._pending for k in self._stage_keys):
                return None  # exhausted, or the next stage needs this stage's results
            if not self._issue_stage():
                return None
