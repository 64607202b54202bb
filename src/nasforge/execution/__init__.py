"""Executors: where trials run.

* ``"inline"`` — :class:`InlineExecutor`, in the calling process (debugging, look-up evaluators);
* ``"local"`` — :class:`LocalExecutor`, a pool of warm worker processes on this machine with
  per-trial time limits and crash isolation (``gpus=[0, 1]``: one worker per GPU);
* ``"ray"`` — :class:`RayExecutor`, warm Ray actors on a cluster (or a private local Ray
  instance), each trial with its own CPU / GPU request; needs ``pip install 'nasforge[ray]'``.

Every executor implements the abstract :class:`Executor` and passes the conformance suite in
:mod:`nasforge.execution.testing`.

The experiment creates one with :func:`make_executor`; an :class:`Executor` instance may also be
passed to ``Experiment(executor=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from nasforge._lazy import lazy_attributes
from nasforge.execution.base import (
    Completion,
    Executor,
    ExecutorError,
    TrialCancelled,
    TrialStopped,
)
from nasforge.execution.inline import InlineExecutor
from nasforge.execution.local import LocalExecutor, available_cores

__all__ = [
    "Completion",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "TrialCancelled",
    "TrialStopped",
    "available_cores",
    "make_executor",
]

EXECUTORS = ("inline", "local", "ray")


# imported on first use: Ray is an optional dependency
__getattr__ = lazy_attributes(__name__, {"RayExecutor": "nasforge.execution.ray"})


def make_executor(kind: str | Executor, concurrency: int = 1, preload: Iterable[str] = ()) -> Executor:
    """An executor from its name (``"inline"``, ``"local"``, ``"ray"``) or an :class:`Executor` as is.

    ``"ray"`` runs ``concurrency`` trials at a time on a private local Ray instance, or on the
    cluster this process is connected to (``ray.init(address=...)`` first); pass a
    :class:`RayExecutor` for anything else (an address, GPUs per trial, a runtime environment).
    """
    if isinstance(kind, Executor):
        return kind
    if kind == "inline":
        return InlineExecutor()
    if kind == "local":
        return LocalExecutor(concurrency, preload=preload)
    if kind == "ray":
        from nasforge.execution.ray import RayExecutor

        return RayExecutor(max_concurrency=concurrency, preload=preload)
    raise ValueError(f"unknown executor {kind!r}; valid: 'inline', 'local', 'ray' (or an Executor instance)")
