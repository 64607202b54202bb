"""``FunctionEvaluator``: any function as an evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasforge.evaluate._hparams import HyperParameters
from nasforge.evaluate.base import Evaluator, TrialContextProtocol, _plain
from nasforge.space import Space
from nasforge.trial import check_mode

__all__ = ["FunctionEvaluator"]


class FunctionEvaluator(Evaluator):
    """Wrap ``fn(model, ctx) -> float | dict`` (or ``fn(arch, ctx)`` with ``uses_model=False``).

    With ``uses_model=False`` the network is never built: ``fn`` receives the arch dict (a
    tabular benchmark look-up, a zero-cost estimate from the arch alone). ``metric`` names the
    main metric (a float return is stored under it) and ``mode`` says whether it is maximised
    (``"max"``) or minimised (``"min"``).

    ``test_fn`` optionally implements ``Experiment.test``. It is called as
    ``test_fn(model_or_arch, ctx, retrain) -> float | dict[str, float]`` where ``model_or_arch``
    is a *freshly initialised* frozen network (or the arch dict with ``uses_model=False``),
    ``ctx`` is the trial context (``ctx.seed`` differs per test seed; ``ctx.report(step,
    metrics)`` shows progress) and ``retrain`` says whether to train on train+val (True) or on the
    train split alone (False). It trains the network it was given (the experiment saves that
    network's weights afterwards) and returns test metrics; a float is stored as
    ``test_<metric>``.

    ``config`` (a JSON dict) is part of the evaluator's identity, with ``metric``, ``mode`` and
    ``uses_model``: the experiment refuses to resume with a different one. ``fn``'s settings live
    in its code, which the experiment cannot see, so pass them (``config={"epochs": 3}``) to have
    a change refused; the function's name is not compared (renaming it, or running the script
    as ``__main__`` rather than importing it, is the same experiment).

    Extra keyword arguments are passed on to ``fn`` (and ``test_fn``) as keywords; a value
    choice among them (``lr=nn.choice([1e-3, 3e-3], label="lr")``) is a hyper-parameter
    searched jointly with the architecture: it joins the experiment's space under its label
    (an unlabelled one is named after the argument) and ``fn`` gets the trial's value.

    Example::

        def fit(model, ctx):
            ...
            ctx.report(epoch, {"acc": acc})
            return {"acc": acc, "latency_ms": ms}

        evaluator = FunctionEvaluator(fit, metric="acc")
        lookup = FunctionEvaluator(lambda arch, ctx: table[arch["op"]], uses_model=False)
        joint = FunctionEvaluator(lambda model, ctx, lr: train(model, lr), lr=nn.choice([1e-3, 3e-3], label="lr"))
    """

    def __init__(
        self,
        fn: Callable[[Any, TrialContextProtocol], float | dict[str, float]],
        uses_model: bool = True,
        metric: str = "score",
        mode: str = "max",
        test_fn: Callable[[Any, TrialContextProtocol, bool], float | dict[str, float]] | None = None,
        config: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if not callable(fn):
            raise TypeError(f"FunctionEvaluator needs a callable fn(model_or_arch, ctx), got {type(fn).__name__}")
        if test_fn is not None and not callable(test_fn):
            raise TypeError(f"test_fn must be callable fn(model_or_arch, ctx, retrain) or None, got {type(test_fn).__name__}")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a non-empty string, got {metric!r}")
        check_mode(mode)
        self.fn = fn
        self.uses_model = bool(uses_model)
        self.metric = metric
        self.mode = mode
        self.test_fn = test_fn
        self.kwargs = kwargs
        self._hparams = HyperParameters("FunctionEvaluator", kwargs)
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"config must be a dict (JSON) or None, got {type(config).__name__}")
        self.user_config = config

    @property
    def hyperparameters(self) -> Space:
        """The space of the hyper-parameter choices among the keyword arguments (empty without any)."""
        return self._hparams.space

    def _call_args(self, model_or_arch: Any, ctx: TrialContextProtocol) -> tuple[Any, dict[str, Any]]:
        if not self.kwargs:
            return model_or_arch, {}
        arch = getattr(ctx, "arch", None) or {}
        values = {**self.kwargs, **self._hparams.values(arch)}
        if not self.uses_model and isinstance(model_or_arch, dict) and self._hparams:
            model_or_arch = {k: v for k, v in model_or_arch.items() if k not in self._hparams.space}
        return model_or_arch, values

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": "FunctionEvaluator",
            "uses_model": self.uses_model,
            "metric": self.metric,
            "mode": self.mode,
        }
        if self.user_config is not None:
            out["config"] = self.user_config
        plain = {k: _plain(v) for k, v in self.kwargs.items() if k not in self._hparams.choices}
        if plain:
            out["kwargs"] = plain  # the fixed keyword arguments fn receives
        if self._hparams:
            out["hyperparameters"] = self._hparams.space.describe()
        return out

    def test_config(self) -> dict[str, Any]:
        test_fn = getattr(self.test_fn, "__qualname__", repr(self.test_fn)) if self.test_fn is not None else None
        return {**self.config(), "fn": getattr(self.fn, "__qualname__", None), "test_fn": test_fn}

    def evaluate(self, model_or_arch: Any, ctx: TrialContextProtocol) -> float | dict[str, float]:
        model_or_arch, kwargs = self._call_args(model_or_arch, ctx)
        return self.fn(model_or_arch, ctx, **kwargs)

    def test(self, model_or_arch: Any, ctx: TrialContextProtocol, retrain: bool = True) -> float | dict[str, float]:
        if self.test_fn is None:
            return super().test(model_or_arch, ctx, retrain)
        model_or_arch, kwargs = self._call_args(model_or_arch, ctx)
        return self.test_fn(model_or_arch, ctx, retrain, **kwargs)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        extra = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"FunctionEvaluator({name}, uses_model={self.uses_model}, metric={self.metric!r}, mode={self.mode!r}{extra})"
