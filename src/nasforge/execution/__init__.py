"""Executors: where trials run.

* ``"inline"`` — :class:`InlineExecutor`, in the calling process (debugging, look-up evaluators);
* ``"local"`` — :class:`LocalExecutor`, a pool of warm worker processes on this machine with
  per-trial time limits and crash isolation.

The experiment creates one with :func:`make_executor`; an :class:`Executor` instance may also be
passed to ``Experiment(executor=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from nasforge.execution.base import (
    Completion,
    Executor,
    ExecutorError,
    ResultError,
    TrialContext,
    TrialStopped,
    normalize_metrics,
)
from nasforge.execution.inline import InlineExecutor
from nasforge.execution.local import LocalExecutor, available_cores

__all__ = [
    "Completion",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "LocalExecutor",
    "ResultError",
    "TrialContext",
    "TrialStopped",
    "available_cores",
    "make_executor",
    "normalize_metrics",
]

EXECUTORS = ("inline", "local", "ray")


def make_executor(kind: str | Executor, concurrency: int = 1, preload: Iterable[str] = ()) -> Executor:
    """An executor from its name (``"inline"``, ``"local"``) or an :class:`Executor` as is."""
    if isinstance(kind, Executor):
        return kind
    if kind == "inline":
        return InlineExecutor()
    if kind == "local":
        return LocalExecutor(concurrency, preload=preload)
    if kind == "ray":
        raise NotImplementedError("executor='ray' is planned; use 'local' (worker processes) or 'inline' for now")
    raise ValueError(f"unknown executor {kind!r}; valid: 'inline', 'local' (or an Executor instance)")
