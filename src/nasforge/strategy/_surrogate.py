"""The surrogate protocol of the model-based strategies, and its default: a small ensemble of MLP
regressors in numpy.

All members are trained at once (weights stacked along a leading ensemble axis) with
full-batch Adam on the mean squared error of standardised targets; members differ by their
random initialisation (and, optionally, a bootstrap resample of the data). Torch-free and
fast enough to refit after every result for the few hundred points a NAS search produces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["MLPEnsemble", "Surrogate", "acquisition"]


@runtime_checkable
class Surrogate(Protocol):
    """What :class:`~nasforge.strategy.PredictorBased` and :class:`~nasforge.strategy.Progressive`
    learn from: a regressor over the space's numeric encoding (:meth:`nasforge.space.Space.encode`,
    one row per arch; scores are larger-is-better).

    * ``fit(X, y)``: (re)fit from scratch on ``X`` (``n × d``) and scores ``y`` (``n``);
    * ``predict(X) -> (mean, std)``: predicted score and its uncertainty, two arrays of ``len(X)``.

    A surrogate that uses randomness may also define ``set_seed(seed: int)``: the strategy calls it
    before every fit with a seed drawn from its own generator, so the same seed gives the same
    proposals and a restored state refits the same model. The default is :class:`MLPEnsemble`.
    Example (a nearest-neighbour regressor)::

        class NearestNeighbour:
            def fit(self, X, y):
                self.X, self.y = X, y
            def predict(self, X):
                d = ((X[:, None, :] - self.X[None]) ** 2).sum(-1)
                return self.y[d.argmin(1)], np.sqrt(d.min(1))
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(eq=False, repr=False)
class MLPEnsemble:
    """``n_models`` ReLU MLPs with ``layers`` hidden layers of width ``hidden``; a :class:`Surrogate`
    whose mean and std are the ensemble's.

    Example::

        ens = MLPEnsemble(n_models=5)
        ens.set_seed(0)
        ens.fit(X, y)
        mean, std = ens.predict(X_new)
    """

    n_models: int = 5
    hidden: int = 32
    layers: int = 2
    epochs: int = 150
    lr: float = 0.01
    weight_decay: float = 1e-4
    bootstrap: bool = False
    _theta: np.ndarray | None = field(default=None, init=False)
    _seed: int | None = field(default=None, init=False)

    def set_seed(self, seed: int | None) -> None:
        """Seed of the next :meth:`fit` (initial weights, bootstrap resamples)."""
        self._seed = seed

    # -- parameters as views into one flat vector (one Adam update per step) -----------------
    def _shapes(self, d: int) -> list[tuple[int, ...]]:
        """Weight and bias shape of each layer, the members stacked along the first axis."""
        e, widths = self.n_models, [d] + [self.hidden] * self.layers + [1]
        return [s for a, b in zip(widths, widths[1:]) for s in ((e, a, b), (e, 1, b))]

    def _views(self, flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        ends = np.cumsum([math.prod(shape) for shape in shapes])
        return [part.reshape(shape) for part, shape in zip(np.split(flat, ends[:-1]), shapes)]

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self._seed)
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        n, d = X.shape
        e = self.n_models
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        t = ((y - self._y_mean) / self._y_std).astype(np.float32)
        shapes = self._shapes(d)
        total = sum(math.prod(s) for s in shapes)
        theta = np.zeros(total, dtype=np.float32)
        params = self._views(theta, shapes)
        for i in range(0, len(params), 2):  # He-uniform weights, zero biases
            fan_in = params[i].shape[1]
            bound = math.sqrt(6.0 / fan_in) if i < len(params) - 2 else math.sqrt(3.0 / fan_in)
            params[i][...] = rng.uniform(-bound, bound, size=params[i].shape)
        if self.bootstrap:
            w = np.stack([np.bincount(rng.integers(n, size=n), minlength=n) for _ in range(e)]).astype(float)
        else:
            w = np.ones((e, n))
        w = (w / n)[:, :, None].astype(np.float32)  # per-member sample weights (bootstrap counts)
        tb = t[None, :, None]
        grad, m, v = (np.zeros(total, dtype=np.float32) for _ in range(3))  # gradient, moments
        grads = self._views(grad, shapes)
        b1, b2, eps = 0.9, 0.999, 1e-8
        nl, h = self.layers, self.hidden
        for step in range(1, self.epochs + 1):
            # first layer shared input: one 2-D product for all members
            a = np.maximum((X @ params[0].transpose(1, 0, 2).reshape(d, e * h)).reshape(n, e, h).transpose(1, 0, 2) + params[1], 0.0)
            acts = [a]
            for li in range(1, nl):
                a = np.maximum(a @ params[2 * li] + params[2 * li + 1], 0.0)
                acts.append(a)
            out = a @ params[2 * nl] + params[2 * nl + 1]
            delta = 2.0 * w * (out - tb)  # d(weighted mean sq err)/d(out), per member
            grads[2 * nl][...] = acts[-1].transpose(0, 2, 1) @ delta
            grads[2 * nl + 1][...] = delta.sum(axis=1, keepdims=True)
            back = delta @ params[2 * nl].transpose(0, 2, 1)
            for li in range(nl - 1, -1, -1):
                back = back * (acts[li] > 0)
                grads[2 * li + 1][...] = back.sum(axis=1, keepdims=True)
                if li:
                    grads[2 * li][...] = acts[li - 1].transpose(0, 2, 1) @ back
                    back = back @ params[2 * li].transpose(0, 2, 1)
                else:
                    g0 = X.T @ back.transpose(1, 0, 2).reshape(n, e * h)  # (d, e*h)
                    grads[0][...] = g0.reshape(d, e, h).transpose(1, 0, 2)
            if self.weight_decay:
                grad += self.weight_decay * theta
            m *= b1
            m += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * grad * grad
            lr_t = self.lr * math.sqrt(1 - b2**step) / (1 - b1**step)
            theta -= np.float32(lr_t) * m / (np.sqrt(v) + np.float32(eps))
        self._theta = theta
        self._shapes_d = shapes

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """Predictions of every member, shape ``(n_models, len(X))``, in the targets' units."""
        if self._theta is None:
            raise RuntimeError("MLPEnsemble: predict called before fit")
        params = self._views(self._theta, self._shapes_d)
        a = np.asarray(X, dtype=np.float32)[None]
        for li in range(self.layers):
            a = np.maximum(a @ params[2 * li] + params[2 * li + 1], 0.0)
        out = (a @ params[2 * self.layers] + params[2 * self.layers + 1])[..., 0]
        return out.astype(np.float64) * self._y_std + self._y_mean

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members, each of shape ``(len(X),)``."""
        p = self.predict_members(X)
        return p.mean(axis=0), p.std(axis=0)


ACQUISITIONS = ("its", "ucb", "ei", "mean")


def acquisition(
    kind: str,
    mean: np.ndarray,
    std: np.ndarray,
    best: float,
    rng: np.random.Generator,
    beta: float = 0.5,
) -> np.ndarray:
    """Acquisition values (larger is better) from a surrogate's predicted ``mean`` and ``std``.

    * ``its``: independent Thompson sampling (BANANAS): one draw per candidate from a normal
      with the predicted mean and standard deviation;
    * ``ucb``: mean + ``beta`` * std;
    * ``ei``: expected improvement over ``best`` under that normal;
    * ``mean``: the predicted mean (pure exploitation).
    """
    if kind == "its":
        return mean + std * rng.standard_normal(mean.shape)
    if kind == "ucb":
        return mean + beta * std
    if kind == "ei":
        s = np.maximum(std, 1e-9)
        z = (mean - best) / s
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        cdf = 0.5 * (1 + _erf(z / math.sqrt(2)))
        return (mean - best) * cdf + s * pdf
    if kind == "mean":
        return mean
    raise ValueError(f"unknown acquisition {kind!r}; valid: {', '.join(ACQUISITIONS)}")


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7); avoids a scipy dependency.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return sign * y
