"""``FunctionEvaluator``: any function as an evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasforge.evaluate._hparams import HyperParameters
from nasforge.evaluate.base import Evaluator, TrialContextProtocol
from nasforge.space import Space

__all__ = ["FunctionEvaluator"]


class FunctionEvaluator(Evaluator):
    """Wrap ``fn(model, ctx) -> float | dict`` (or ``fn(arch, ctx)`` with ``uses_model=False``).

    With ``uses_model=False`` the network is never built: ``fn`` receives the arch dict (a
    tabular benchmark look-up, a zero-cost estimate from the arch alone). ``metric`` names the
    main metric (a float return is stored under it) and ``mode`` says whether it is maximised
    (``"max"``) or minimised (``"min"``). ``test_fn(model_or_arch, ctx, retrain)`` optionally
    implements :meth:`Experiment.test`.

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
        **kwargs: Any,
    ):
        if not callable(fn):
            raise TypeError(f"FunctionEvaluator needs a callable fn(model_or_arch, ctx), got {type(fn).__name__}")
        if test_fn is not None and not callable(test_fn):
            raise TypeError(f"test_fn must be callable fn(model_or_arch, ctx, retrain) or None, got {type(test_fn).__name__}")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a non-empty string, got {metric!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.fn = fn
        self.uses_model = bool(uses_model)
        self.metric = metric
        self.mode = mode
        self.test_fn = test_fn
        self.kwargs = kwargs
        self._hparams = HyperParameters("FunctionEvaluator", kwargs)

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
            hp_labels = set(self._hparams.space)
            model_or_arch = {k: v for k, v in model_or_arch.items() if k not in hp_labels}
        return model_or_arch, values

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
