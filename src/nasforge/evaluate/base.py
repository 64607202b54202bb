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

Optionally, ``config() -> dict`` (JSON) describes what decides the search scores (recipe,
epochs, data sizes); the experiment records it and refuses to resume under the same name when
it changed (``Experiment(..., allow_evaluator_change=True)`` overrides). ``test_config()``
describes what decides the test scores (test rows are reused only while it is unchanged). The
default (:func:`default_config`) is the class name, ``metric``, ``mode`` and ``uses_model``;
override ``config()`` to add the settings your evaluator's scores depend on, e.g.
``return {**super().config(), "epochs": self.epochs}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Protocol

__all__ = ["Evaluator", "TrialContextProtocol", "config_hash", "evaluator_config", "evaluator_test_config"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able stand-in for a config value (None when it has none)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, (list, tuple)) and depth < 2 and len(value) <= 32:
        items = [_plain(v, depth + 1) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    if isinstance(value, dict) and depth < 2 and len(value) <= 32 and all(isinstance(k, str) for k in value):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__  # by name, not module: the same script run as __main__ or imported agrees
    return None


def default_config(evaluator: Any) -> dict[str, Any]:
    """The class name, ``metric``, ``mode`` and ``uses_model``: what any evaluator declares.

    Its other attributes are not compared (they may be counters, caches or paths that change
    between runs without changing what is measured); an evaluator whose settings decide its
    scores says so by overriding ``config()`` (the built-in ones do).
    """
    out: dict[str, Any] = {"class": type(evaluator).__qualname__}
    for key in ("metric", "mode", "uses_model"):
        if hasattr(evaluator, key):
            out[key] = _plain(getattr(evaluator, key))
    return out


def _call_config(evaluator: Any, method: str) -> dict[str, Any]:
    fn = getattr(evaluator, method, None)
    config = fn() if callable(fn) else default_config(evaluator)
    if not isinstance(config, dict):
        raise TypeError(f"{type(evaluator).__name__}.{method}() must return a dict, got {type(config).__name__}")
    # JSON round trip (and no memory addresses), so a stored config compares equal to a fresh one
    return json.loads(_ADDRESS.sub("", json.dumps(config, sort_keys=True, default=lambda v: getattr(v, "__qualname__", None) or repr(v))))


def evaluator_config(evaluator: Any) -> dict[str, Any]:
    """``evaluator.config()`` if it has one, else :func:`default_config`; JSON-normalised."""
    return _call_config(evaluator, "config")


def evaluator_test_config(evaluator: Any) -> dict[str, Any]:
    """``evaluator.test_config()`` if it has one, else its :func:`evaluator_config`."""
    if callable(getattr(evaluator, "test_config", None)):
        return _call_config(evaluator, "test_config")
    return evaluator_config(evaluator)


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON config."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


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

    def config(self) -> dict[str, Any]:
        """What decides the search scores (see the module docstring); override to be precise."""
        return default_config(self)

    def test(self, model_or_arch: Any, ctx: TrialContextProtocol, retrain: bool = True) -> float | dict[str, float]:
        """Final test-set evaluation of a chosen arch (see the module docstring)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no test-set evaluation; use an evaluator that implements "
            f"test() (e.g. Classification(..., test_data=...), FunctionEvaluator(fn, test_fn=...))"
        )
