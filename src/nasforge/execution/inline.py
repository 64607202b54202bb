"""Run tasks in the calling process, one at a time (debugging, tabular benchmarks)."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from nasforge.execution.base import (
    Completion,
    Executor,
    ExecutorError,
    ReportCallback,
    TrialCancelled,
    TrialTimeout,
)
from nasforge.execution.worker import run_task, set_threads

__all__ = ["InlineExecutor", "default_inline_threads"]


def default_inline_threads() -> int:
    """Half the cores this process may use, at least 1 (see :class:`InlineExecutor`)."""
    from nasforge.execution.local import available_cores

    return max(1, available_cores() // 2)


class _InlineChannel:
    def __init__(self, task_id: int, on_report: ReportCallback, deadline: float | None, cancelled: set[int]):
        self.task_id = task_id
        self.on_report = on_report
        self.deadline = deadline
        self.cancelled = cancelled
        self.worker = "inline"
        self.last_payload: Any = None

    def report(self, step: int, payload: Any) -> bool:
        self.last_payload = payload
        stop = bool(self.on_report(self.task_id, step, payload))
        if self.task_id in self.cancelled:
            raise TrialCancelled()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TrialTimeout()
        return stop


class InlineExecutor(Executor):
    """Runs each task in this process when :meth:`poll` is called; no pickling, no isolation.

    Exceptions raised by a task are recorded like in worker processes, but a crash of the
    interpreter ends the experiment, and a ``timeout`` or a :meth:`cancel` of a running task
    can only take effect at the task's reports (``ctx.report``) and when it returns. Use it
    for debugging (breakpoints work) and for evaluators that are cheap look-ups.

    ``threads`` is the number of torch threads a task runs with (set before each task when torch
    is loaded, and the caller's setting restored after it). The default, ``"auto"``, is half the
    cores available to this process (at least 1): torch's own default (every core) oversubscribes
    the CPU as soon as anything else runs (a reported DARTS search: 42 s with one thread, over
    200 s with torch's default while another process ran). ``None`` leaves torch's setting alone.

    Example::

        ex = InlineExecutor()
        ex.register("square", lambda x, channel: x * x)
        ex.submit(0, "square", 3)
        ex.poll(None, on_report=lambda *a: False)[0].value   # 9
    """

    name = "inline"

    def __init__(self, threads: int | str | None = "auto") -> None:
        if threads == "auto":
            threads = default_inline_threads()
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int, 'auto' or None (torch's setting), got {threads!r}")
        self.threads = threads
        self._runners: dict[str, Callable[[Any, Any], Any]] = {}
        self._queue: deque[tuple[int, str, Any, float | None, float]] = deque()
        self._current: int | None = None
        self._cancelled: set[int] = set()

    @property
    def capacity(self) -> int:
        return 1

    def register(self, key: str, runner: Callable[[Any, Any], Any]) -> None:
        self._runners[key] = runner

    def idle_slots(self) -> int:
        return 0 if self._queue else 1

    def running(self) -> int:
        return len(self._queue)

    def submit(self, task_id: int, key: str, args: Any, timeout: float | None = None) -> float:
        if key not in self._runners:
            raise KeyError(f"no runner registered under {key!r}; registered: {sorted(self._runners)}")
        if self._queue:
            raise ExecutorError("submit() called with no idle slot; check idle_slots() first")
        started = time.time()
        self._queue.append((task_id, key, args, timeout, started))
        return started

    def cancel(self, task_id: int) -> bool:
        if task_id == self._current or any(entry[0] == task_id for entry in self._queue):
            self._cancelled.add(task_id)  # running (cancel called from a report callback) or queued
            return True
        return False

    def poll(self, timeout: float | None, on_report: ReportCallback) -> list[Completion]:
        if not self._queue:
            if timeout:
                time.sleep(timeout)
            return []
        task_id, key, args, limit, started = self._queue[0]
        if task_id in self._cancelled:
            self._queue.popleft()
            self._cancelled.discard(task_id)
            return [Completion(task_id, "cancelled", None, "cancelled", "inline", started, time.time())]
        t0 = time.monotonic()
        channel = _InlineChannel(task_id, on_report, t0 + limit if limit else None, self._cancelled)
        self._current = task_id
        torch = sys.modules.get("torch") if self.threads is not None else None
        previous = torch.get_num_threads() if torch is not None else None
        set_threads(self.threads)
        try:
            status, value, error = run_task(self._runners[key], task_id, args, channel)
        except TrialTimeout:
            status, value, error = "error", None, f"timeout after {limit:g} s"
        except TrialCancelled:
            status, value, error = "cancelled", None, "cancelled"
        finally:
            self._current = None
            self._queue.popleft()
            set_threads(previous)  # the caller's setting (None: torch was not loaded)
        if limit and status not in ("error", "cancelled") and time.monotonic() - t0 > limit:
            status, value, error = "error", None, f"timeout after {limit:g} s"
        self._cancelled.discard(task_id)
        return [Completion(task_id, status, value, error, "inline", started, time.time())]
