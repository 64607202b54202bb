"""A third-party strategy in about 60 lines: Bayesian optimisation with a Gaussian process.

:class:`~nasforge.strategy.PredictorBased` runs the BO loop (random initial archs, candidates by
mutating the best archs, the unseen candidate with the best acquisition); the Gaussian process below
is its surrogate through the :class:`~nasforge.strategy.Surrogate` protocol: ``fit(X, y)`` and
``predict(X) -> (mean, std)`` on the space's one-hot encoding. It passes the shipped strategy suite
(tests/test_strategy_gp_example.py runs ``StrategyConformance`` on it).

Usage: python examples/gp_bo_strategy.py [--budget 60] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from nasforge.strategy import PredictorBased


class GaussianProcess:
    """Exact GP regression with an RBF kernel on standardised targets; the length scale is the
    one of ``length_scales`` with the largest marginal likelihood. Deterministic."""

    def __init__(self, length_scales: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0), noise: float = 1e-3):
        self.length_scales, self.noise = length_scales, noise

    @staticmethod
    def _kernel(A: np.ndarray, B: np.ndarray, scale: float) -> np.ndarray:
        d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
        return np.exp(-0.5 * np.maximum(d2, 0.0) / scale**2)

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        self._mu, self._sd = y.mean(), y.std() or 1.0
        t = (y - self._mu) / self._sd
        best = None
        for scale in self.length_scales:
            L = np.linalg.cholesky(self._kernel(self._X, self._X, scale) + self.noise * np.eye(len(t)))
            alpha = np.linalg.solve(L.T, np.linalg.solve(L, t))
            nll = 0.5 * t @ alpha + np.log(np.diag(L)).sum()  # negative log marginal likelihood (+ const)
            if best is None or nll < best[0]:
                best = (nll, scale, L, alpha)
        _, self.scale, self._L, self._alpha = best

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ks = self._kernel(np.asarray(X, dtype=float), self._X, self.scale)
        v = np.linalg.solve(self._L, Ks.T)
        std = np.sqrt(np.maximum(1.0 - (v * v).sum(0), 1e-12))
        return Ks @ self._alpha * self._sd + self._mu, std * self._sd


class GPBayesOpt(PredictorBased):
    """GP-based Bayesian optimisation with expected improvement, refitted after every result."""

    def __init__(self, num_init: int = 10, acquisition: str = "ei", **options):
        super().__init__(num_init=num_init, acquisition=acquisition, surrogate=GaussianProcess(), refit_fraction=0.0, **options)

    def __repr__(self) -> str:
        return f"GPBayesOpt(num_init={self.num_init}, acquisition={self.acquisition!r})"


if __name__ == "__main__":
    from nasforge.strategy.testing import run_ask_tell, toy_score, toy_space

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    trials = run_ask_tell(GPBayesOpt(), toy_space(), toy_score, budget=args.budget, seed=args.seed)
    best = max(trials, key=lambda t: t.score)
    print(f"best of {len(trials)} trials: {best.arch} score {best.score:.2f} (the optimum is 0.30) at trial {best.id}")
