"""Hardware constraints and multiple objectives for :class:`~nasforge.experiment.Experiment`.

* :class:`Constraints` — upper bounds on ``params``, ``flops`` and ``latency_ms`` of the frozen
  network. The experiment measures an arch (``nasforge.profile``; cached per canonical arch)
  *before* it is trained and records one over budget as ``REJECTED`` with the measured values.
* :func:`parse_objectives` — ``[("val_acc", "max"), ("params", "min")]``: the first objective
  is the experiment's main metric; a trial's oriented (larger-is-better) objective vector is
  ``trial.objectives``; :func:`pareto_trials` picks the non-dominated ones.
* :class:`CostMeter` — measures and caches the costs (torch is imported only when used).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from nasforge.experiment.results import _positive
from nasforge.pareto import orient, pareto_front
from nasforge.trial import Trial, TrialStatus

__all__ = ["COSTS", "Constraints", "CostMeter", "format_pareto", "objective_vector", "parse_objectives", "pareto_trials"]

#: the costs the experiment can measure itself (all minimised)
COSTS = ("params", "flops", "latency_ms")


def parse_objectives(objectives: Any) -> list[tuple[str, str]] | None:
    """Validate ``[(metric, "max"|"min"), ...]`` (at least one, distinct names); None stays None."""
    if objectives is None:
        return None
    if isinstance(objectives, (str, bytes)) or not isinstance(objectives, Sequence) or not objectives:
        raise ValueError(
            f"objectives must be a non-empty list of (metric, 'max'|'min') pairs, e.g. "
            f"[('val_acc', 'max'), ('params', 'min')]; got {objectives!r}"
        )
    out: list[tuple[str, str]] = []
    for item in objectives:
        if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
            raise ValueError(f"each objective must be a (metric, 'max'|'min') pair, got {item!r}")
        name, mode = item
        if not isinstance(name, str) or not name:
            raise ValueError(f"an objective's metric must be a non-empty string, got {name!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"objective {name!r}: mode must be 'max' or 'min', got {mode!r}")
        out.append((name, mode))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"objective metrics must be distinct, got {names}")
    return out


def objective_vector(metrics: Mapping[str, Any], objectives: Sequence[tuple[str, str]]) -> list[float] | None:
    """The larger-is-better vector of ``metrics`` for ``objectives``; None if one is missing or not finite."""
    values = []
    for name, _ in objectives:
        v = metrics.get(name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return None
        values.append(float(v))
    return orient(values, [m for _, m in objectives])


def pareto_trials(trials: Sequence[Trial], objectives: Sequence[tuple[str, str]]) -> list[Trial]:
    """The non-dominated successful trials for ``objectives`` (sorted by the first objective, best
    first, then by id). Trials without every objective's metric are left out."""
    objectives = parse_objectives(objectives) or []
    if len(objectives) < 2:
        raise ValueError(f"a Pareto front needs at least 2 objectives, got {objectives}")
    vectors = [(t, objective_vector(t.metrics, objectives)) for t in trials
               if t.status is TrialStatus.SUCCEEDED]
    ok = [(t, vec) for t, vec in vectors if vec is not None]
    if not ok:
        return []
    front = [ok[i][0] for i in pareto_front([vec for _, vec in ok])]
    first, mode = objectives[0]
    sign = -1.0 if mode == "max" else 1.0
    front.sort(key=lambda t: (sign * float(t.metrics[first]), t.id))
    return front


class Constraints:
    """Upper bounds on the cost of an architecture, checked before it is trained.

    ``params`` (trainable parameters), ``flops`` (one forward pass of ``input_shape``,
    ``nasforge.profile.count_flops``), ``latency_ms`` (median forward time of ``input_shape`` on
    ``device``, ``nasforge.profile.measure_latency``). ``input_shape`` (batch first) is needed for
    flops and latency; ``max_rejected`` stops an experiment whose strategy proposes that many
    over-budget archs (they do not count against ``max_trials``).

    ``Experiment(..., constraints={"params": 1e6, "flops": 5e7, "input_shape": (1, 3, 32, 32)})``
    builds one from a dict.
    """

    def __init__(
        self,
        params: float | None = None,
        flops: float | None = None,
        latency_ms: float | None = None,
        input_shape: Sequence[int] | None = None,
        max_rejected: int = 1000,
        latency_repeats: int = 20,
        device: str | None = None,
    ):
        self.limits: dict[str, float] = {}
        for name, value in (("params", params), ("flops", flops), ("latency_ms", latency_ms)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"constraint {name!r} must be a positive number, got {value!r}")
            self.limits[name] = float(value)
        if not self.limits:
            raise ValueError(f"constraints need at least one limit among {', '.join(COSTS)}")
        if input_shape is not None:
            shape = tuple(input_shape)
            if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise ValueError(f"input_shape must be a sequence of positive ints (batch first), got {input_shape!r}")
            input_shape = shape
        self.input_shape = input_shape
        self.max_rejected = _positive("max_rejected", max_rejected, int, allow_none=False)
        self.latency_repeats = int(latency_repeats)
        self.device = device

    @classmethod
    def from_arg(cls, value: Any) -> Constraints | None:
        if value is None or isinstance(value, Constraints):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"constraints must be a dict like {{'params': 1e6}} or a Constraints, got {type(value).__name__}")
        valid = (*COSTS, "input_shape", "max_rejected", "latency_repeats", "device")
        unknown = [k for k in value if k not in valid]
        if unknown:
            raise ValueError(f"unknown constraint(s) {unknown}; valid keys: {', '.join(valid)}")
        return cls(**dict(value))

    def violations(self, measured: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """``{cost: (measured, limit)}`` for every limit exceeded."""
        return {k: (measured[k], lim) for k, lim in self.limits.items() if k in measured and measured[k] > lim}

    def describe(self) -> dict[str, Any]:
        return {**self.limits, "input_shape": list(self.input_shape) if self.input_shape else None, "max_rejected": self.max_rejected}

    def __repr__(self) -> str:
        return f"Constraints({', '.join(f'{k}={v:g}' for k, v in self.limits.items())}, input_shape={self.input_shape})"


def _infer_input_shape(evaluator: Any) -> tuple[int, ...] | None:
    """A batch-1 input shape from the evaluator (``input_shape`` attribute, or its training data)."""
    shape = getattr(evaluator, "input_shape", None)
    if shape is not None:
        return tuple(shape)
    x = getattr(getattr(evaluator, "train_data", None), "x", None)
    if x is not None and hasattr(x, "shape") and len(x.shape) >= 1:
        return (1, *tuple(int(d) for d in x.shape[1:]))
    return None


class CostMeter:
    """Measures ``params`` / ``flops`` / ``latency_ms`` of frozen archs, cached per canonical arch."""

    def __init__(self, model_space: Any, costs: Sequence[str], input_shape: Sequence[int] | None,
                 latency_repeats: int = 20, device: str | None = None):
        unknown = [c for c in costs if c not in COSTS]
        if unknown:
            raise ValueError(f"cannot measure {unknown}; measurable costs: {', '.join(COSTS)}")
        if not callable(getattr(model_space, "freeze", None)):
            raise TypeError(
                f"measuring {list(costs)} needs a model space that builds networks (with .freeze(arch)), "
                f"got {type(model_space).__name__}"
            )
        if input_shape is None and any(c in ("flops", "latency_ms") for c in costs):
            raise ValueError(
                "measuring flops or latency_ms needs an input shape: pass constraints={..., 'input_shape': (1, C, H, W)} "
                "or an evaluator with training data"
            )
        self.model_space = model_space
        self.costs = tuple(costs)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.latency_repeats = latency_repeats
        self.device = device
        self._cache: dict[str, dict[str, float]] = {}

    def _key(self, arch: Mapping[str, Any]) -> str:
        canonical = getattr(getattr(self.model_space, "space", None), "canonical", None)
        a = canonical(arch) if callable(canonical) else arch
        return json.dumps(a, sort_keys=True, default=str)

    def measure(self, arch: Mapping[str, Any]) -> dict[str, float]:
        key = self._key(arch)
        if key not in self._cache:
            from nasforge import profile

            net = self.model_space.freeze(dict(arch))
            out: dict[str, float] = {}
            if "params" in self.costs:
                out["params"] = float(profile.count_params(net))
            shape = cast(tuple[int, ...], self.input_shape)  # set whenever flops / latency are measured (__init__)
            if "flops" in self.costs:
                out["flops"] = float(profile.count_flops(net, shape))
            if "latency_ms" in self.costs:
                lat = profile.measure_latency(net, shape, repeats=self.latency_repeats, device=self.device)
                out["latency_ms"] = 1000.0 * lat
            self._cache[key] = out
        return dict(self._cache[key])


def format_pareto(trials: Sequence[Trial], objectives: Sequence[Sequence[str]], width: int | None = 80) -> list[str]:
    """Text lines of the Pareto front of ``trials`` (a heading and a table), for the CLI."""
    objs = parse_objectives([tuple(o) for o in objectives]) or []
    front = pareto_trials(trials, objs)
    names = [n for n, _ in objs]
    lines = [f"Pareto front ({len(front)} non-dominated trial(s); " + ", ".join(f"{n} {m}imised" for n, m in objs) + "):"]
    rows = []
    for t in front:
        arch = json.dumps(t.arch, separators=(",", ":"))
        if width and len(arch) > width:
            arch = arch[: width - 1] + "…"
        rows.append([str(t.id), *(f"{float(t.metrics[n]):.6g}" for n in names), arch])
    headers = ["trial", *names, "arch"]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for cells in [headers, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(c.rjust(w) if i < len(headers) - 1 else c for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    return lines
