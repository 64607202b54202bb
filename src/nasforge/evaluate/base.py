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

import abc
import contextlib
import hashlib
import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import InitVar, dataclass
from typing import Any, Protocol

from nasforge.errors import NasforgeError
from nasforge.execution.base import TrialStopped

__all__ = [
    "Evaluator",
    "ResultError",
    "TrialContext",
    "TrialContextProtocol",
    "config_hash",
    "evaluator_config",
    "evaluator_test_config",
    "normalize_metrics",
]

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


class ResultError(NasforgeError, ValueError):
    """An evaluator returned something that is not a valid result (wrong type, NaN, …)."""

    brief = True  # executors report its message alone, without the traceback


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, numbers.Real):  # bool included
        return float(value)
    item = getattr(value, "item", None)  # numpy / torch scalars and 1-element arrays
    with contextlib.suppress(ValueError, RuntimeError):
        if callable(item) and isinstance(out := item(), numbers.Real):
            return float(out)
    raise ResultError(
        f"metric {name!r} is a {type(value).__name__} ({value!r:.60}); metrics must be numbers "
        f"(int, float, or a 0-d numpy/torch value)"
    )


def normalize_metrics(result: Any, metric: str, *, require_metric: bool = True) -> dict[str, float]:
    """Turn an evaluator's return value (a number or a dict of numbers) into ``{name: float}``.

    Raises :class:`ResultError` when the value is not a number / dict of numbers, when the main
    ``metric`` is missing (with ``require_metric``) or when any value is NaN or infinite.

    >>> normalize_metrics(0.5, "acc")
    {'acc': 0.5}
    """
    if isinstance(result, Mapping):
        out = {}
        for name, value in result.items():
            if not isinstance(name, str):
                raise ResultError(f"metric names must be strings, got {name!r}")
            out[name] = _to_float(name, value)
    elif result is None:
        raise ResultError(f"the evaluator returned None; return a float (stored as {metric!r}) or a dict of metrics")
    else:
        try:
            out = {metric: _to_float(metric, result)}
        except ResultError:
            raise ResultError(
                f"the evaluator returned a {type(result).__name__}; return a float (stored as {metric!r}) or a dict of metrics"
            ) from None
    if require_metric and metric not in out:
        raise ResultError(
            f"the evaluator's metrics {sorted(out)} lack the main metric {metric!r}; return it, "
            f"or set Experiment(metric=...) to one of them"
        )
    bad = [f"{k}={v}" for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise ResultError(f"the evaluator returned non-finite metric(s): {', '.join(bad)}")
    return out


class TrialContextProtocol(Protocol):
    arch: dict[str, Any]
    trial_id: int

    def report(self, step: int, metrics: float | dict[str, float]) -> None: ...


@dataclass(eq=False)
class TrialContext:
    """What an evaluator sees of its trial: ``arch``, ``trial_id``, ``seed``, ``report()``, ``should_stop``.

    It wraps the executor's ``channel`` (whose ``report(step, payload) -> stop?`` passes the
    payload through untouched): the metrics are checked and made floats here, on the evaluator's
    side. Example (inside an evaluator)::

        for epoch in range(epochs):
            train_one_epoch(model)
            ctx.report(epoch, {"val_acc": validate(model)})   # may stop the trial early

    ``report`` takes a number (stored under the experiment's main metric) or a dict of numbers.
    When the experiment decides to stop the trial, ``report`` raises
    :class:`~nasforge.execution.TrialStopped` (the trial ends STOPPED with its last report).
    """

    trial_id: int
    arch: dict[str, Any]
    channel: InitVar[Any]
    metric: str = "score"
    worker: str | None = None
    seed: int | None = None

    def __post_init__(self, channel: Any) -> None:
        self._channel = channel
        self._stop = False
        self.last_metrics: dict[str, float] | None = None

    @property
    def should_stop(self) -> bool:
        """True once the experiment asked this trial to stop (evaluators may poll it)."""
        return self._stop

    def report(self, step: int, metrics: float | Mapping[str, float]) -> None:
        """Report intermediate metrics at ``step`` (e.g. an epoch). May raise TrialStopped."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"ctx.report step must be an int (e.g. the epoch), got {step!r}")
        values = normalize_metrics(metrics, self.metric, require_metric=False)
        self.last_metrics = values
        if self._channel.report(int(step), values):
            self._stop = True
            raise TrialStopped(f"trial {self.trial_id} stopped early at step {step}")

    def __repr__(self) -> str:
        return f"TrialContext(trial_id={self.trial_id}, arch={self.arch})"


class Evaluator(abc.ABC):
    """Base class of evaluators (see the module docstring for the contract).

    Subclasses implement :meth:`evaluate`; :meth:`config` and :meth:`test` have defaults
    (the class name, ``metric``, ``mode``, ``uses_model``; no test-set evaluation).
    """

    uses_model: bool = True
    metric: str = "score"
    mode: str = "max"

    @abc.abstractmethod
    def evaluate(self, model_or_arch: Any, ctx: TrialContextProtocol) -> float | dict[str, float]:
        """Score one candidate: the frozen network (``uses_model``) or the arch dict."""

    def config(self) -> dict[str, Any]:
        """What decides the search scores (see the module docstring); override to be precise."""
        return default_config(self)

    def test(self, model_or_arch: Any, ctx: TrialContextProtocol, retrain: bool = True) -> float | dict[str, float]:
        """Final test-set evaluation of a chosen arch (see the module docstring)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no test-set evaluation; use an evaluator that implements "
            f"test() (e.g. Classification(..., test_data=...), FunctionEvaluator(fn, test_fn=...))"
        )
