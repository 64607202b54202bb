"""The shipped executor conformance suite, run against the in-process and the local executors.

The Ray executor runs the same suite in tests/test_execution_ray.py (beside its Ray instance).
"""

from __future__ import annotations

import abc

import pytest

from nasforge.execution import Executor, InlineExecutor, LocalExecutor, make_executor
from nasforge.execution.testing import ExecutorContract


class TestInlineExecutorContract(ExecutorContract):
    isolates_crashes = False  # a crash of the task is a crash of this process
    hard_timeouts = False  # only checked at reports and at the end
    cancels_running = False  # only at the task's next report
    pickles_runners = False
    kills_helpers = False

    def make_executor(self, concurrency: int) -> Executor:
        return InlineExecutor()


class TestLocalExecutorContract(ExecutorContract):
    def make_executor(self, concurrency: int) -> Executor:
        return LocalExecutor(concurrency)


def test_executor_is_an_abstract_base_class():
    assert isinstance(Executor, abc.ABCMeta)
    assert {"capacity", "register", "idle_slots", "running", "submit", "poll", "cancel"} <= Executor.__abstractmethods__

    class Partial(Executor):
        def register(self, key, runner):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Partial()


def test_make_executor_knows_every_kind():
    assert isinstance(make_executor("inline"), InlineExecutor)
    local = make_executor("local", 3)
    assert isinstance(local, LocalExecutor) and local.capacity == 3
    given = InlineExecutor()
    assert make_executor(given) is given
    with pytest.raises(ValueError, match="unknown executor 'fork'.*'inline', 'local', 'ray'"):
        make_executor("fork")
