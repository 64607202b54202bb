"""The evaluator contract: how a candidate is turned into scores.

An evaluator is a picklable object (it may travel to another process with cloudpickle) with

* ``evaluate(model_or_arch, ctx) -> float | dict[str, float]``: called with the frozen
  ``torch.nn.Module`` when ``uses_model`` is True, or with the arch dict when it is False (then
  the network is never built — tabular benchmarks, zero-cost look-ups);
* ``metric`` / ``mode``: the name of the main metric in the returned dict and whether it is
  maximised (``"max"``) or minimised (``"min"``); a plain float return is stored under ``metric``.

``ctx`` is the trial context: ``ctx.arch``, ``ctx.trial_id`` and ``ctx.report(step, metrics)``
(intermediate values; the experiment may decide to stop the trial early there). Evaluators
never write to the store themselves.

Optionally, ``test(model_or_arch, ctx, retrain=True) -> dict[str, float]`` measures a chosen
architecture on the held-out test set (``Experiment.test``): it receives a freshly initialised
frozen model, trains it from scratch (on train+val when ``retrain`` is True, on train only
otherwise) and returns test metrics. The trained model is the one passed in, so the
experiment can save its weights afterwards.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Evaluator", "TrialContextProtocol"]


class TrialContextProtocol(Protocol):
    arch: dict[str, Any]
    trial_id: int

    def report(self, step: int, metrics: float | dict[str, float]) -> None: ...


class Evaluator:
    """Base class of evaluators (see the module docstring for the contract)."""

    uses_model: bool = True
    metric: str = "score"
    mode: str = "max"

    def evaluate(self, model_or_arch: Any, ctx: TrialContextProtocol) -> float | dict[str, float]:  # pragma: no cover
        raise NotImplementedError

    def test(self, model_or_arch: Any, ctx: TrialContextProtocol, retrain: bool = True) -> float | dict[str, float]:
        """Final test-set evaluation of a chosen arch (see the module docstring)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no test-set evaluation; use an evaluator that implements "
            f"test() (e.g. Classification(..., test_data=...), FunctionEvaluator(fn, test_fn=...))"
        )
