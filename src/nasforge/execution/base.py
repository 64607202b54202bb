"""What every executor shares: the task protocol and the completion record.

An executor runs *tasks*. A task is ``(task_id, key, args)``: ``key`` names a *runner* that
was registered once with :meth:`Executor.register` (a picklable callable, typically the
evaluator bundled with the model space), and ``args`` is the small per-task argument (the
arch). The runner is called as ``runner(args, channel)`` where ``channel.report(step,
payload) -> bool`` forwards an intermediate value to the parent and returns True when the
parent asked the task to stop (the runner then raises :class:`TrialStopped`).

The parent drives everything through :meth:`Executor.poll`, which returns the tasks that
finished (successfully or not) as :class:`Completion` records. Reports and results are
opaque payloads passed through as they are: an executor is a generic pool that knows nothing
of trials, metrics, strategies or the store (the evaluator's side,
:class:`nasforge.evaluate.TrialContext`, checks and converts metrics).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasforge.errors import NasforgeError

__all__ = [
    "Completion",
    "Executor",
    "ExecutorError",
    "ReportCallback",
    "TrialCancelled",
    "TrialStopped",
    "TrialTimeout",
]

#: ``on_report(task_id, step, payload) -> stop?`` — called in the parent for every report.
ReportCallback = Callable[[int, int, Any], bool]


class ExecutorError(NasforgeError, RuntimeError):
    """The executor itself cannot work (e.g. workers cannot start)."""


class TrialStopped(BaseException):
    """Raised by a runner (``TrialContext.report``) when the parent asked its task to stop.

    It derives from ``BaseException`` so that an evaluator's ``except Exception`` does not
    swallow it. Evaluators normally let it propagate; the task then ends ``"stopped"`` with its
    last reported payload.
    """


class TrialTimeout(BaseException):
    """Raised inside an inline trial that ran past its time limit (checked at each report)."""


class TrialCancelled(BaseException):
    """Raised inside an inline trial that was cancelled while it ran (checked at each report)."""


@dataclass
class Completion:
    """How a task ended.

    ``status`` is ``"ok"`` (``value`` is the runner's return value), ``"stopped"`` (``value``
    holds the last reported payload, or None), ``"error"`` (``error`` holds the reason:
    exception and traceback, ``"timeout after N s"``, ``"worker died with signal 11 (SIGSEGV)"``)
    or ``"cancelled"`` (:meth:`Executor.cancel`; ``error`` says so).
    ``started`` / ``finished`` are wall-clock times (``time.time()``) seen by the parent.
    """

    task_id: int
    status: str
    value: Any = None
    error: str | None = None
    worker: str | None = None
    started: float | None = None
    finished: float | None = None


class Executor(abc.ABC):
    """Runs tasks somewhere (this process, worker processes, a cluster): the executor contract.

    The parent registers runners once, submits tasks while :meth:`idle_slots` is positive and
    collects :class:`Completion` records from :meth:`poll`. Reports from running tasks are
    handed to the ``on_report`` callback given to :meth:`poll`; its return value (stop?) goes
    back to the task as the return value of that very report.

    What every executor guarantees (checked by the conformance suite
    :class:`nasforge.execution.testing.ExecutorContract`, which ``inline``, ``local`` and
    ``ray`` all pass):

    * every submitted task ends in exactly one :class:`Completion` (``ok``, ``stopped``,
      ``error`` with its reason, or ``cancelled``), and is never run twice silently: a task is
      only re-sent when it provably had not started (its worker died before taking it);
    * reports reach ``on_report`` while the task runs, and a True answer stops it at that report;
    * ``timeout`` (seconds, counted from when the task really starts) fails the task with
      ``"timeout after N s"``; an exception, a NaN / inf result and (where the executor
      isolates trials) a dead worker — ``os._exit``, a segfault, a SIGKILL — fail only that task,
      with the reason, and the executor keeps its capacity;
    * :meth:`shutdown` leaves no process behind.

    Subclasses implement the abstract methods; :meth:`start` and :meth:`shutdown` default to
    doing nothing (an executor without resources).
    """

    name = "base"

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many tasks may run at the same time."""

    def start(self) -> None:  # noqa: B027 - optional hook, no resources by default
        """Start resources (idempotent)."""

    @abc.abstractmethod
    def register(self, key: str, runner: Callable[[Any, Any], Any]) -> None:
        """Make ``runner(args, channel)`` available to tasks under ``key`` (re-registering replaces it).

        Executors that run tasks in other processes raise ``TypeError`` when it cannot be pickled.
        """

    @abc.abstractmethod
    def idle_slots(self) -> int:
        """How many more tasks :meth:`submit` accepts now."""

    @abc.abstractmethod
    def running(self) -> int:
        """How many submitted tasks have not been returned by :meth:`poll` yet."""

    @abc.abstractmethod
    def submit(self, task_id: int, key: str, args: Any, timeout: float | None = None) -> float:
        """Start a task; returns its start time (``time.time()``).

        Raises ``KeyError`` for a ``key`` nobody registered and :class:`ExecutorError` when no
        slot is idle.
        """

    @abc.abstractmethod
    def poll(self, timeout: float | None, on_report: ReportCallback) -> list[Completion]:
        """Wait up to ``timeout`` seconds (None: until one finishes) for tasks to finish; return those that did."""

    @abc.abstractmethod
    def cancel(self, task_id: int) -> bool:
        """Stop a submitted task: its worker is stopped (and replaced) and :meth:`poll` returns it
        with status ``"cancelled"``. False when the task is unknown or already finished."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, no resources by default
        """Stop workers and free resources (idempotent); no process is left behind."""

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
