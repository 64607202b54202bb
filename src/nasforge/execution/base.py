"""What every executor shares: the task protocol, the completion record, the trial context.

An executor runs *tasks*. A task is ``(task_id, key, args)``: ``key`` names a *runner* that
was registered once with :meth:`Executor.register` (a picklable callable, typically the
evaluator bundled with the model space), and ``args`` is the small per-task argument (the
arch). The runner is called as ``runner(args, channel)`` where ``channel.report(step,
metrics) -> bool`` forwards intermediate values to the parent and returns True when the parent
asked the task to stop.

The parent drives everything through :meth:`Executor.poll`, which returns the tasks that
finished (successfully or not) as :class:`Completion` records. Nothing here knows about
strategies or the store.
"""

from __future__ import annotations

import abc
import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import NasforgeError

__all__ = [
    "Completion",
    "Executor",
    "ExecutorError",
    "ReportCallback",
    "ResultError",
    "TrialCancelled",
    "TrialContext",
    "TrialStopped",
    "TrialTimeout",
    "normalize_metrics",
]

#: ``on_report(task_id, step, metrics) -> stop?`` — called in the parent for every report.
ReportCallback = Callable[[int, int, dict[str, float]], bool]


class ExecutorError(NasforgeError, RuntimeError):
    """The executor itself cannot work (e.g. workers cannot start)."""


class TrialStopped(BaseException):
    """Raised by :meth:`TrialContext.report` when the experiment stopped the trial early.

    It derives from ``BaseException`` so that an evaluator's ``except Exception`` does not
    swallow it. Evaluators normally let it propagate; the trial is then recorded as STOPPED
    with its last reported metrics.
    """


class TrialTimeout(BaseException):
    """Raised inside an inline trial that ran past its time limit (checked at each report)."""


class TrialCancelled(BaseException):
    """Raised inside an inline trial that was cancelled while it ran (checked at each report)."""


class ResultError(NasforgeError, ValueError):
    """An evaluator returned something that is not a valid result (wrong type, NaN, …)."""


@dataclass
class Completion:
    """How a task ended.

    ``status`` is ``"ok"`` (``value`` is the runner's return value), ``"stopped"`` (``value``
    holds the last reported metrics, or None), ``"error"`` (``error`` holds the reason:
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


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # numpy / torch scalars and 1-element arrays
    if callable(item):
        try:
            out = item()
        except (ValueError, RuntimeError):
            out = None
        if isinstance(out, numbers.Real):
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
        raise ResultError(
            f"the evaluator returned None; return a float (stored as {metric!r}) or a dict of metrics"
        )
    else:
        try:
            out = {metric: _to_float(metric, result)}
        except ResultError:
            raise ResultError(
                f"the evaluator returned a {type(result).__name__}; return a float (stored as "
                f"{metric!r}) or a dict of metrics"
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


class TrialContext:
    """What an evaluator sees of its trial: ``arch``, ``trial_id``, ``report()``, ``should_stop``.

    Example (inside an evaluator)::

        for epoch in range(epochs):
            train_one_epoch(model)
            ctx.report(epoch, {"val_acc": validate(model)})   # may stop the trial early

    ``report`` takes a number (stored under the experiment's main metric) or a dict of numbers.
    When the experiment decides to stop the trial, ``report`` raises :class:`TrialStopped`
    (pass ``raise_on_stop=False`` to the constructor's owner to only set ``should_stop``).
    """

    def __init__(
        self,
        trial_id: int,
        arch: dict[str, Any],
        channel: Any,
        metric: str = "score",
        worker: str | None = None,
        seed: int | None = None,
    ):
        self.trial_id = trial_id
        self.arch = arch
        self.metric = metric
        self.worker = worker
        self.seed = seed
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


def now() -> float:
    return time.time()
