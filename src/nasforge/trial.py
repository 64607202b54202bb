"""A trial: one architecture proposed by a strategy and its evaluation. No torch here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from nasforge.space import Arch

__all__ = ["Trial", "TrialStatus"]


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "arch": self.arch,
            "status": self.status.value,
            "metrics": self.metrics,
            "score": self.score,
            "reports": [[s, m] for s, m in self.reports],
            "error": self.error,
            "started": self.started,
            "finished": self.finished,
            "worker": self.worker,
        }
