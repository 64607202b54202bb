"""Zero-cost proxies: scores of an *untrained* network from one minibatch (or no data at all).

Each proxy is a function ``proxy(model, inputs, targets=None, loss_fn=None) -> float`` where
larger means "predicted more accurate" (the sign conventions of the papers). None of them
changes the model given to it: proxies that rewrite weights work on a copy.

=============  =========  ==========================================================================
name           data       definition
=============  =========  ==========================================================================
``synflow``    free       Tanaka et al. 2020 / Abdelfattah et al. 2021: BatchNorm removed, every
                          parameter replaced by its absolute value, float64, input all ones
                          (batch 1); ``R = sum(f(1))``; score ``Σ_conv/linear Σ |θ ⊙ ∂R/∂θ|``.
``naswot``     inputs     Mellor et al. 2021 (ICML): binary code ``c_i`` of every ``nn.ReLU``'s input
                          (``> 0``) per sample; ``K_H = Σ_relu [c cᵀ + (1-c)(1-c)ᵀ]``
                          (= N_A − Hamming distance); score ``log |det K_H|``.
``jacob_cov``  inputs     Mellor et al. 2020 (v1 of "NAS without training"): ``J = ∂Σf(x)/∂x`` per
                          sample, ``Σ_J = corrcoef(J)``, eigenvalues ``λ``; score
                          ``-Σ [log(λ + k) + 1/(λ + k)]``, ``k = 1e-5``.
``snip``       inputs +   Lee et al. 2019: ``Σ_conv/linear Σ |θ ⊙ ∂L/∂θ|`` for the loss ``L`` on the
               targets    minibatch (cross-entropy by default).
``grad_norm``  inputs +   Abdelfattah et al. 2021: ``Σ_conv/linear ‖∂L/∂W‖₂`` (per layer Euclidean
               targets    norm of the weight gradient, summed over layers).
``zen``        free       Lin et al. 2021 (Zen-NAS): weights ~ N(0, 1), BN with batch statistics,
                          Gaussian inputs ``x`` and ``ε``; ``Δ = E‖F(x) − F(x + αε)‖₁`` on the
                          pre-global-pooling feature map ``F`` (α = 0.01); score
                          ``log Δ + Σ_bn log sqrt(mean_c σ²_c)`` (σ² the BN layer's batch
                          variance). Averaged over ``repeats`` draws.
``params``     free       number of trainable parameters.
``flops``      free       FLOPs of one forward pass of a single sample (``nasforge.profile``).
=============  =========  ==========================================================================

"free" proxies only use the input *shape*; the others take the minibatch given. Data-using
proxies run the network in training mode (BatchNorm on batch statistics), as the papers do.

Example::

    from nasforge.evaluate.proxies import ZeroCostEvaluator, score
    net = model_space.freeze(arch)
    score("synflow", net, (1, 3, 32, 32))                  # data-free
    score("naswot", net, (x, y))                           # one real minibatch
    Experiment(model_space, Random(), ZeroCostEvaluator(["synflow", "naswot"], (x, y)), ...)
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from nasforge.evaluate.base import Evaluator

__all__ = [
    "DATA_FREE",
    "PROXIES",
    "ProxyScorer",
    "ZeroCostEvaluator",
    "flops",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "params",
    "score",
    "snip",
    "synflow",
    "zen",
]

_WEIGHTED = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
_BN = torch.nn.modules.batchnorm._BatchNorm


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """The weights of the Conv/Linear layers: what the gradient-based proxies score."""
    weights = [m.weight for m in model.modules() if isinstance(m, _WEIGHTED) and isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not weights:
        raise ValueError(f"{type(model).__name__} has no Conv/Linear layer with a weight: the proxy has nothing to score")
    return weights


def _default_loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(output, targets)


@contextlib.contextmanager
def _mode(model: torch.nn.Module, train: bool) -> Iterator[torch.nn.Module]:
    """Put a model in train/eval mode for a block and restore every module's mode after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def _shape(inputs: torch.Tensor | Sequence[int]) -> tuple[int, ...]:
    if isinstance(inputs, torch.Tensor):
        return tuple(inputs.shape)
    shape = tuple(inputs)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"inputs must be a tensor or an input shape of positive ints (batch first), got {inputs!r}")
    return shape


def _as_tensor(inputs: torch.Tensor | Sequence[int]) -> torch.Tensor:
    return inputs if isinstance(inputs, torch.Tensor) else torch.randn(*_shape(inputs))


def _without_bn(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every BatchNorm layer replaced by the identity."""
    clone = copy.deepcopy(model)
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BN):
                setattr(parent, name, torch.nn.Identity())
    return clone


# -- the proxies ------------------------------------------------------------------------------------
def synflow(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: Any = None, loss_fn: Any = None) -> float:
    """SynFlow (data-free): ``Σ |θ ⊙ ∂R/∂θ|`` on the |θ|-linearised, BN-free network in float64."""
    shape = _shape(inputs)
    net = _without_bn(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    with _mode(net, train=False):
        out = net(torch.ones((1, *shape[1:]), dtype=torch.float64))
        torch.sum(out).backward()
    return _grad_sum(_weights(net), _sensitivity)


def naswot(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: Any = None, loss_fn: Any = None) -> float:
    """NASWOT (Mellor et al. 2021): ``log|det K_H|`` of the ReLU activation-pattern kernel."""
    x = _as_tensor(inputs)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"naswot needs a minibatch of at least 2 samples, got {n}")
    kernel = torch.zeros(n, n, dtype=torch.float64)
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    if not relus:
        raise ValueError(f"naswot scores the inputs of torch.nn.ReLU modules; {type(model).__name__} has none")

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        c = (args[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(c @ c.t()).add_((1.0 - c) @ (1.0 - c).t())

    handles = [m.register_forward_pre_hook(hook) for m in relus]
    try:
        with _mode(model, train=True), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    _, logdet = torch.linalg.slogdet(kernel)
    return float(logdet)


def jacob_cov(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: Any = None, loss_fn: Any = None) -> float:
    """Jacobian covariance (Mellor et al. 2020): ``-Σ log(λ+k) + 1/(λ+k)`` of ``corrcoef(∂Σf/∂x)``."""
    x = _as_tensor(inputs).detach().clone().requires_grad_(True)
    if x.shape[0] < 2:
        raise ValueError(f"jacob_cov needs a minibatch of at least 2 samples, got {x.shape[0]}")
    with _mode(model, train=True):
        out = model(x)
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
    jac = grad.reshape(x.shape[0], -1).to(torch.float64).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)  # NaN for a constant row (e.g. a dead network): no correlation, 0
    eig = np.linalg.eigvalsh(np.nan_to_num(corr, nan=0.0))
    k = 1e-5
    return float(-np.sum(np.log(np.abs(eig) + k) + 1.0 / (np.abs(eig) + k)))


_Term = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (weight, its gradient) -> a scalar


def _sensitivity(w: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    return (w * grad).abs().sum()


def _grad_sum(weights: list[torch.Tensor], term: _Term) -> float:
    """``Σ term(w, w.grad)`` over the weights that received a gradient."""
    with torch.no_grad():
        return float(sum(float(term(w, w.grad)) for w in weights if w.grad is not None))


def _loss_grad_sum(model: torch.nn.Module, name: str, inputs: Any, targets: Any, loss_fn: Any,
                   term: _Term) -> float:
    """:func:`_grad_sum` after one backward pass of the loss on the minibatch; the model's
    ``.grad`` are left as they were."""
    saved = [p.grad for p in model.parameters()]
    try:
        x = _as_tensor(inputs)
        if targets is None:
            raise ValueError(f"proxy {name!r} needs targets (a minibatch (inputs, targets)); "
                             f"data-free proxies: {sorted(DATA_FREE)}")
        weights = _weights(model)
        model.zero_grad(set_to_none=True)
        with _mode(model, train=True):
            loss = (loss_fn or _default_loss)(model(x), targets)
            loss.backward()
        return _grad_sum(weights, term)
    finally:
        for p, g in zip(model.parameters(), saved):
            p.grad = g


def snip(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: torch.Tensor | None = None, loss_fn: Callable | None = None) -> float:
    """SNIP (Lee et al. 2019): connection sensitivity ``Σ |θ ⊙ ∂L/∂θ|`` over Conv/Linear weights."""
    return _loss_grad_sum(model, "snip", inputs, targets, loss_fn, _sensitivity)


def grad_norm(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: torch.Tensor | None = None, loss_fn: Callable | None = None) -> float:
    """Gradient norm (Abdelfattah et al. 2021): ``Σ_layers ‖∂L/∂W‖₂`` over Conv/Linear weights."""
    return _loss_grad_sum(model, "grad_norm", inputs, targets, loss_fn, lambda w, grad: grad.norm())


def _gaussian_init(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _WEIGHTED):
                torch.nn.init.normal_(m.weight)
                if m.bias is not None:
                    torch.nn.init.zeros_(m.bias)
            elif isinstance(m, (_BN, torch.nn.GroupNorm)) and getattr(m, "weight", None) is not None:
                torch.nn.init.ones_(m.weight)
                torch.nn.init.zeros_(m.bias)


def zen(
    model: torch.nn.Module,
    inputs: torch.Tensor | Sequence[int],
    targets: Any = None,
    loss_fn: Any = None,
    mixup: float = 1e-2,
    repeats: int = 1,
) -> float:
    """Zen-score (Lin et al. 2021), data-free: ``log E‖F(x)−F(x+αε)‖ + Σ_bn log σ̄`` at Gaussian init.

    ``F`` is the input of the last adaptive average pooling module (the pre-GAP feature map, as
    in the paper); a network without one is scored on its output.
    """
    shape = _shape(inputs)
    net = copy.deepcopy(model)
    _gaussian_init(net)
    pools = [m for m in net.modules() if isinstance(m, (torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool3d))]
    captured: list[torch.Tensor] = []
    bn_vars: list[torch.Tensor] = []

    def grab(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0])

    def bn_hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        dims = [d for d in range(x.dim()) if d != 1]
        bn_vars.append(x.var(dim=dims, unbiased=False).mean())

    handles = [m.register_forward_pre_hook(bn_hook) for m in net.modules() if isinstance(m, _BN)]
    if pools:
        handles.append(pools[-1].register_forward_pre_hook(grab))
    results = []
    try:
        with _mode(net, train=True), torch.no_grad():
            for _ in range(max(1, int(repeats))):
                x = torch.randn(shape)
                eps = torch.randn(shape)
                captured.clear()
                out1 = net(x)
                f1 = captured[-1] if captured else out1
                captured.clear()
                bn_vars.clear()
                out2 = net(x + mixup * eps)
                f2 = captured[-1] if captured else out2
                delta = torch.sum(torch.abs(f1 - f2).reshape(shape[0], -1), dim=1).mean()
                log_bn = sum(0.5 * math.log(float(v)) for v in bn_vars if float(v) > 0)
                results.append(math.log(float(delta)) + log_bn if float(delta) > 0 else -math.inf)
    finally:
        for h in handles:
            h.remove()
    return float(np.mean(results))


def params(model: torch.nn.Module, inputs: Any = None, targets: Any = None, loss_fn: Any = None) -> float:
    """Number of trainable parameters (data-free)."""
    from nasforge.profile import count_params

    return float(count_params(model))


def flops(model: torch.nn.Module, inputs: torch.Tensor | Sequence[int], targets: Any = None, loss_fn: Any = None) -> float:
    """FLOPs of one forward pass of one sample (data-free; ``nasforge.profile.count_flops``)."""
    from nasforge.profile import count_flops

    return float(count_flops(model, (1, *_shape(inputs)[1:])))


PROXIES: dict[str, Callable[..., float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
    "snip": snip,
    "grad_norm": grad_norm,
    "zen": zen,
    "params": params,
    "flops": flops,
}
#: proxies that use only the input shape (no data): scored identically on any minibatch
DATA_FREE = frozenset({"synflow", "zen", "params", "flops"})
_NEEDS_TARGETS = frozenset({"snip", "grad_norm"})


def _reinit(model: torch.nn.Module) -> None:
    for m in model.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset) and m is not model:
            reset()


def _resolve(proxy: object) -> tuple[str, Callable[..., float]]:
    if callable(proxy):
        return getattr(proxy, "__name__", "proxy"), proxy
    if not isinstance(proxy, str) or proxy not in PROXIES:
        raise ValueError(f"unknown zero-cost proxy {proxy!r}; valid: {', '.join(PROXIES)} (or a function(model, inputs, targets, loss_fn))")
    return proxy, PROXIES[proxy]


def _minibatch(data: Any, batch_size: int | None = None) -> tuple[torch.Tensor | tuple[int, ...], torch.Tensor | None]:
    """``(inputs, targets)`` from a minibatch ``(x, y)``, a tensor ``x``, an input shape, or an
    iterable of batches (a DataLoader: its first batch)."""
    x: torch.Tensor | tuple[int, ...]
    if isinstance(data, torch.Tensor):
        x, y = data, None
    elif isinstance(data, (tuple, list)) and data and all(isinstance(d, int) and not isinstance(d, bool) for d in data):
        x, y = tuple(data), None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data[0], data[1]
        if y is not None and not isinstance(y, torch.Tensor):
            y = torch.as_tensor(y)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        first = next(iter(data), None)
        if first is None:
            raise ValueError("data is an empty iterable; give a minibatch (inputs, targets), a tensor or an input shape")
        return _minibatch(first, batch_size)
    else:
        raise TypeError(
            f"data must be a minibatch (inputs, targets), an inputs tensor, an input shape like (8, 3, 32, 32) "
            f"or a DataLoader; got {type(data).__name__}"
        )
    if batch_size is not None and isinstance(x, torch.Tensor):
        x = x[:batch_size]
        y = y[:batch_size] if y is not None else None
    elif batch_size is not None:
        x = (batch_size, *x[1:])
    return x, y


def score(
    proxy: str | Callable[..., float],
    model: torch.nn.Module,
    data: Any,
    seed: int | None = 0,
    reinit: bool = True,
    loss_fn: Callable | None = None,
) -> float:
    """Score ``model`` with one proxy, deterministically for a given ``seed``.

    ``data`` is a minibatch ``(inputs, targets)``, an inputs tensor, or an input shape (batch
    first); with a shape, proxies that need inputs get a seeded N(0, 1) stand-in minibatch and
    ``snip`` / ``grad_norm`` random labels over the network's outputs. ``reinit=True`` re-draws
    every layer's initial weights from ``seed`` first (on a copy: ``model`` is never changed), so
    the score is a function of the architecture and the seed alone.
    """
    name, fn = _resolve(proxy)
    x, y = _minibatch(data)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        net = model
        if reinit and name not in ("params", "flops"):
            net = copy.deepcopy(model)
            _reinit(net)
        if not isinstance(x, torch.Tensor) and name not in DATA_FREE:
            x = torch.randn(*x)
        if y is None and name in _NEEDS_TARGETS and isinstance(x, torch.Tensor):  # (a shape became a tensor above)
            with torch.no_grad(), _mode(net, train=False):
                n_out = int(net(x[:1]).reshape(1, -1).shape[1])
            y = torch.randint(0, n_out, (x.shape[0],))
        return float(fn(net, x, y, loss_fn))


class ZeroCostEvaluator(Evaluator):
    """An evaluator that scores an untrained network with zero-cost proxies (no training).

    ``proxy``: a name of :data:`PROXIES`, a list of names (all are returned; the first is the
    main metric), or a function ``fn(model, inputs, targets, loss_fn) -> float``. ``data``: one
    minibatch ``(inputs, targets)``, an inputs tensor, an input shape (data-free proxies; others
    get a seeded Gaussian stand-in batch) or a DataLoader (its first batch). Scores are larger-is-better.

    Example::

        ev = ZeroCostEvaluator(["synflow", "naswot"], (x[:64], y[:64]))
        Experiment(NasBench201Space(), Random(), ev, max_trials=1000, executor="inline").run()
    """

    uses_model = True
    mode = "max"

    def __init__(
        self,
        proxy: str | Callable[..., float] | Sequence[str | Callable[..., float]],
        data: Any,
        seed: int = 0,
        reinit: bool = True,
        batch_size: int | None = None,
        loss_fn: Callable | None = None,
    ):
        items = list(proxy) if isinstance(proxy, (list, tuple)) else [proxy]
        if not items:
            raise ValueError(f"proxy must name at least one proxy; valid: {', '.join(PROXIES)}")
        self.proxies = [_resolve(p) for p in items]
        names = [n for n, _ in self.proxies]
        if len(set(names)) != len(names):
            raise ValueError(f"proxy names must be distinct, got {names}")
        self.metric = names[0]
        x, y = _minibatch(data, batch_size)
        missing = [n for n in names if n in _NEEDS_TARGETS and y is None and isinstance(x, torch.Tensor)]
        if missing:
            raise ValueError(f"proxies {missing} need targets: give data as (inputs, targets)")
        self.inputs, self.targets = x, y
        self.seed = int(seed)
        self.reinit = bool(reinit)
        self.loss_fn = loss_fn

    def evaluate(self, model: torch.nn.Module, ctx: Any = None) -> dict[str, float]:
        data = self.inputs if self.targets is None else (self.inputs, self.targets)
        return {
            name: score(fn, model, data, seed=self.seed, reinit=self.reinit, loss_fn=self.loss_fn)
            for name, fn in self.proxies
        }

    def __repr__(self) -> str:
        shape = tuple(self.inputs.shape) if isinstance(self.inputs, torch.Tensor) else self.inputs
        return f"ZeroCostEvaluator({[n for n, _ in self.proxies]!r}, inputs={shape}, seed={self.seed})"


class ProxyScorer:
    """``arch -> proxy score``: freezes the arch from ``model_space`` and scores it (cached per arch).

    A picklable callable for strategies that pre-filter or warm-start on proxy scores
    (:class:`nasforge.strategy.ZeroCostWarmStart`) or use them as features
    (``PredictorBased(features=...)``). ``transform="log"`` returns ``sign(s)·log1p(|s|)``, handy for
    proxies spanning many orders of magnitude (synflow, params, flops).

    Example::

        scorer = ProxyScorer(NasBench201Space(), "synflow", (1, 3, 32, 32))
        scorer(arch)        # -> float
    """

    def __init__(
        self,
        model_space: Any,
        proxy: str | Callable[..., float] | Sequence[str | Callable[..., float]],
        data: Any,
        seed: int = 0,
        transform: str | None = None,
        loss_fn: Callable | None = None,
    ):
        if transform not in (None, "log"):
            raise ValueError(f"transform must be None or 'log', got {transform!r}")
        self.model_space = model_space
        self.evaluator = ZeroCostEvaluator(proxy, data, seed=seed, loss_fn=loss_fn)
        self.transform = transform
        self._cache: dict[str, Any] = {}
        self.seconds = 0.0  # total scoring time, for reports
        self.calls = 0

    def scores(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """Every proxy of the scorer for ``arch`` (transformed)."""
        key = json.dumps(dict(arch), sort_keys=True, default=str)
        if key not in self._cache:
            start = time.perf_counter()
            raw = self.evaluator.evaluate(self.model_space.freeze(dict(arch)))
            if self.transform == "log":
                raw = {k: math.copysign(math.log1p(abs(v)), v) if math.isfinite(v) else v for k, v in raw.items()}
            self._cache[key] = raw
            self.seconds += time.perf_counter() - start
            self.calls += 1
        return dict(self._cache[key])

    def features(self, arch: Mapping[str, Any]) -> list[float]:
        return list(self.scores(arch).values())

    def __call__(self, arch: Mapping[str, Any]) -> float:
        return self.scores(arch)[self.evaluator.metric]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state
