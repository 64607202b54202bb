"""A trial: one architecture proposed by a strategy and its evaluation. No torch here."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any, NoReturn

from nasforge.space import Arch

__all__ = ["ExperimentStatus", "FrozenTrial", "Trial", "TrialStatus", "check_mode", "rank_trials"]


def check_mode(mode: Any) -> str:
    """``mode`` itself if it is ``"max"`` or ``"min"`` (a metric's direction); else ``ValueError``."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    return str(mode)


class TrialStatus(str, enum.Enum):
    WAITING = "WAITING"  # asked, not yet started
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # raised, NaN/inf, timeout, worker died
    STOPPED = "STOPPED"  # stopped early by the strategy (multi-fidelity); its last report is kept
    REJECTED = "REJECTED"  # over a hardware constraint: never trained; its metrics hold the measured costs

    @property
    def finished(self) -> bool:
        return self in (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.STOPPED, TrialStatus.REJECTED)


class ExperimentStatus(str, enum.Enum):
    """An experiment's recorded status (the text stored in the ``experiments`` table)."""

    CREATED = "created"
    RUNNING = "running"  # recorded while ``run()`` runs; ``Store.live_status`` checks the owner is alive
    DONE = "done"  # its last run ended normally (a budget spent or the strategy exhausted)
    INTERRUPTED = "interrupted"  # stopped (Ctrl-C, a signal), killed, or crashed


@dataclass
class Trial:
    """What a strategy is told about a trial.

    ``score`` is the main metric oriented so that *larger is better* (the experiment owns the
    metric's name and direction and negates minimised metrics), or None when the trial failed.
    ``reports`` holds the intermediate ``(step, metrics)`` pairs the evaluator reported.
    ``objectives`` is, in a multi-objective experiment, the trial's objective values in the
    experiment's order, each oriented so that larger is better (None when failed / rejected).
    """

    id: int
    arch: Arch
    status: TrialStatus = TrialStatus.WAITING
    metrics: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    reports: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    objectives: list[float] | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def frozen(self) -> FrozenTrial:
        """A read-only copy (what strategies are told): assigning a field, or changing ``arch``,
        ``metrics``, ``reports`` or ``objectives`` in place, raises; ``dict(t.arch)`` is a
        mutable copy."""
        copy = object.__new__(FrozenTrial)  # metrics are flat {name: float} (normalize_metrics); archs may nest
        copy.__dict__.update(self.__dict__, arch=_freeze(self.arch), metrics=FrozenDict(self.metrics),
                             reports=FrozenList([(step, FrozenDict(m)) for step, m in self.reports] if self.reports else ()),
                             objectives=None if self.objectives is None else FrozenList(self.objectives))
        return copy

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``objectives``, in order; the status as text, reports as lists."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "objectives"}
        return {**out, "status": self.status.value, "reports": [[s, m] for s, m in self.reports]}


def _read_only(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__name__.removeprefix('Frozen').lower()} belongs to a trial told to a strategy and is "
        f"read-only (the stored trial must not change); copy it first, e.g. dict(trial.arch)"
    )


class FrozenDict(dict):
    """A ``dict`` that refuses changes (JSON, ``==`` and ``dict(...)`` work as for a dict; copies are plain dicts)."""

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


class FrozenList(list):
    """A ``list`` that refuses changes (copies are plain lists)."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


_NESTED = (dict, list, tuple)


def _freeze(value: Any) -> Any:
    """A read-only deep copy of JSON-like data (dicts and lists; tuples stay tuples)."""
    if isinstance(value, dict):
        return FrozenDict({k: _freeze(v) if isinstance(v, _NESTED) else v for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        items = [_freeze(v) if isinstance(v, _NESTED) else v for v in value]
        return tuple(items) if isinstance(value, tuple) else FrozenList(items)
    return value


class FrozenTrial(Trial):
    """A read-only copy of a :class:`Trial` (:meth:`Trial.frozen`): strategies' ``tell`` and
    ``on_report`` receive one, so a strategy cannot change what the experiment stores."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r} of trial {self.id}: strategies are told a read-only copy")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r} of trial {self.id}: strategies are told a read-only copy")


def rank_trials(trials: Iterable[Trial], k: int | None = None, *, metric: str | None = None, mode: str = "max") -> list[Trial]:
    """The successful trials, best first (the ``k`` best with ``k``): the one trial ranking of
    ``Experiment.best``, ``ExperimentResults.best``, the CLI and the dashboard.

    Ranked by the oriented ``score`` (larger is better), or by ``metric`` in ``mode`` (``"max"`` /
    ``"min"``) when given; ties go to the lower trial id. Failed, stopped, rejected and running
    trials, and trials without a finite value, are left out.
    """
    check_mode(mode)
    sign = 1.0 if mode == "max" else -1.0
    scored = []
    for t in trials:
        value = t.score if metric is None else t.metrics.get(metric)
        if t.status is TrialStatus.SUCCEEDED and isinstance(value, (int, float)) and math.isfinite(value):
            scored.append((-sign * float(value), t.id, t))
    scored.sort(key=lambda e: (e[0], e[1]))
    return [t for _, _, t in scored[:k]]
