"""The executor conformance suite: what every :class:`~nasforge.execution.Executor` must do.

A reusable pytest class. Subclass it in a test module and say how to build your executor::

    from nasforge.execution.testing import ExecutorContract

    class TestMyExecutor(ExecutorContract):
        def make_executor(self, concurrency):
            return MyExecutor(concurrency)

pytest then runs every check against it: submit and complete, every task completed exactly
once (never run twice silently), tasks running side by side, reports streamed while a task
runs, early stop at the report that asked for it, cancellation, time limits, the failure kinds
(exception, NaN / inf result, timeout, ``os._exit``, segfault, a worker killed mid-task)
recorded with their reasons, the executor keeping its capacity after failures, picklability
checks, and a shutdown that leaves no process behind. ``inline``, ``local`` and ``ray`` run it in
nasforge's own test suite (``tests/test_executor_contract.py``).

Executors that cannot honour a check by design switch it off with a class attribute (e.g. the
in-process executor cannot survive a segfault): ``isolates_crashes``, ``hard_timeouts``,
``cancels_running``, ``pickles_runners``, ``kills_helpers``. ``expected_failures`` maps test names
to a reason: those run and are reported as expected failures (``xfail``) until fixed.

The executor is built once per test class (``make_executor(concurrency)``, then ``start()``)
and shared by the checks, except the shutdown checks, which build their own. The suite needs
pytest and runs the tasks on this machine (it reads the process ids they write to a temporary
folder); a Ray executor is checked against a local Ray instance.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nasforge.evaluate.base import TrialContext, normalize_metrics
from nasforge.execution.base import Completion, Executor, ExecutorError

__all__ = ["ExecutorContract", "contract_task"]

#: Generous upper bound for anything to happen on a loaded machine (never a speed assertion).
PATIENCE = 120.0


# -- the task every check runs (module level: importable by worker processes) -------------------------
def _mark(folder: str, task_id: int, what: str, value: Any) -> None:
    path = Path(folder, f"{what}-{task_id}")
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(str(value))
    tmp.replace(path)


def _appears(path: Path, patience: float = PATIENCE) -> bool:
    """Wait up to ``patience`` s for ``path`` to exist."""
    end = time.monotonic() + patience
    while not path.exists():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def contract_task(args: tuple[str, int, str, dict[str, Any]], channel: Any) -> Any:
    """The runner of the conformance checks; ``args`` is ``(kind, task_id, folder, params)``.

    Every run first leaves a ``run-<task_id>-<unique>`` file in ``folder`` (so the checks count
    how often each task really ran) and its process id in ``pid-<task_id>``.
    """
    kind, task_id, folder, params = args
    Path(folder, f"run-{task_id}-{os.getpid()}-{uuid.uuid4().hex}").touch()
    _mark(folder, task_id, "pid", os.getpid())
    if kind == "ok":
        return {"score": float(params.get("score", 1.0)), "pid": float(os.getpid())}
    if kind == "raise":
        raise RuntimeError(f"boom from task {task_id}")
    if kind == "bad_result":
        return normalize_metrics(params["value"], "score")
    if kind == "sleep":
        time.sleep(float(params.get("seconds", PATIENCE)))
        return {"score": 0.0}
    if kind == "helper":  # start a helper process (as data loaders, compilers, simulators do), then hang
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        _mark(folder, task_id, "helper", helper.pid)
        time.sleep(float(params.get("seconds", PATIENCE)))
        return {"score": 0.0}
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)
        raise AssertionError("still alive after SIGSEGV")
    if kind == "report":  # the raw channel: stop? is the answer of the report that asked
        for step in range(int(params.get("steps", 100))):
            if channel.report(step, {"score": float(step)}):
                return {"score": float(step), "stopped_at": float(step)}
        return {"score": -1.0, "stopped_at": -1.0}
    if kind == "context":  # the evaluator's view: ctx.report raises TrialStopped
        ctx = TrialContext(task_id, {}, channel, metric="score")
        for step in range(int(params.get("steps", 100))):
            ctx.report(step, {"score": float(step)})
        return {"score": -1.0}
    if kind == "stream":  # report, then wait until the driver has seen that report
        channel.report(0, {"score": 0.0})
        seen = float(_appears(Path(folder, f"seen-{task_id}")))
        return {"score": seen, "seen_while_running": seen}
    if kind == "report_forever":
        step = 0
        while True:
            channel.report(step, {"score": float(step)})
            step += 1
            time.sleep(0.02)
    if kind == "pair":  # start, then wait for the partner task: proves they run at the same time
        Path(folder, f"started-{task_id}").touch()
        concurrent = float(_appears(Path(folder, f"started-{params['partner']}")))
        return {"score": concurrent, "concurrent": concurrent}
    raise ValueError(f"unknown contract task kind {kind!r}")


# -- helpers ---------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reusing the id
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # pragma: no cover - no /proc, or it just ended
        return True


def _wait_dead(pids: list[int], patience: float = 30.0) -> list[int]:
    end = time.monotonic() + patience
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


def _kill_leftovers(pids: list[int]) -> None:
    """Kill processes a failed check left behind (never leave them to the machine)."""
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(OSError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)


def _assert_dead(pids: list[int], message: str, patience: float = 30.0) -> None:
    """Assert that ``pids`` end within ``patience`` s; kill those that do not."""
    try:
        assert not _wait_dead(pids, patience), message
    finally:
        _kill_leftovers(pids)


class _Run:
    """One check's tasks: submits them, collects completions, reads what they wrote."""

    def __init__(self, executor: Executor, folder: str):
        self.ex = executor
        self.folder = folder
        self.reports: list[tuple[int, int, dict[str, float]]] = []
        self.stop_at: dict[int, int] = {}
        self.submitted: set[int] = set()

    def on_report(self, task_id: int, step: int, metrics: dict[str, float]) -> bool:
        self.reports.append((task_id, step, metrics))
        if Path(self.folder, f"done-{task_id}").exists():
            raise AssertionError(f"a report of task {task_id} arrived after its completion")
        Path(self.folder, f"seen-{task_id}").touch()
        return task_id in self.stop_at and step >= self.stop_at[task_id]

    def submit(self, task_id: int, kind: str, timeout: float | None = None, **params: Any) -> float:
        self.submitted.add(task_id)
        return self.ex.submit(task_id, "contract", (kind, task_id, self.folder, params), timeout)

    def collect(
        self, n: int, patience: float = PATIENCE, feed: Sequence[tuple[str, dict[str, Any]]] = ()
    ) -> dict[int, Completion]:
        """Wait for ``n`` completions; ``feed``: tasks ``(kind, params)`` submitted meanwhile (ids 0, 1,
        …) as slots become idle."""
        pending = list(enumerate(feed))
        done: dict[int, Completion] = {}
        end = time.monotonic() + patience
        while len(done) < n:
            assert time.monotonic() < end, f"only {len(done)} of {n} tasks finished within {patience:g} s"
            while pending and self.ex.idle_slots() > 0:
                task, (kind, params) = pending.pop(0)
                self.submit(task, kind, **params)
            for c in self.ex.poll(1.0, self.on_report):
                assert c.task_id not in done, f"task {c.task_id} completed twice"
                done[c.task_id] = c
                Path(self.folder, f"done-{c.task_id}").touch()
        return done

    def one(self, task_id: int, kind: str, timeout: float | None = None, **params: Any) -> Completion:
        self.submit(task_id, kind, timeout, **params)
        return self.collect(1)[task_id]

    def runs(self, task_id: int) -> int:
        return sum(1 for p in Path(self.folder).glob(f"run-{task_id}-*"))

    def read(self, what: str, task_id: int, patience: float = PATIENCE) -> int:
        path = Path(self.folder, f"{what}-{task_id}")
        assert _appears(path, patience), f"task {task_id} never wrote its {what}"
        return int(path.read_text())


class ExecutorContract:
    """Subclass and implement :meth:`make_executor`; pytest runs the checks (see the module docstring)."""

    #: A crash of a task (``os._exit``, segfault, SIGKILL) fails only that task.
    isolates_crashes: bool = True
    #: A task that never reports is still stopped at its time limit.
    hard_timeouts: bool = True
    #: :meth:`Executor.cancel` stops a running task that never reports.
    cancels_running: bool = True
    #: Runners travel to other processes: an unpicklable runner is refused at ``register``.
    pickles_runners: bool = True
    #: Processes started by a task die with it (time limit, cancel, shutdown).
    kills_helpers: bool = True
    #: ``{"test_name": "reason"}``: checks known to fail for now (reported as xfail, not hidden).
    expected_failures: dict[str, str] = {}
    #: Concurrency asked of :meth:`make_executor`.
    concurrency: int = 2

    def make_executor(self, concurrency: int) -> Executor:
        raise NotImplementedError("subclasses return the executor under test")

    # -- fixtures ---------------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _known_failures(self, request: Any) -> None:
        name = request.node.originalname or request.node.name
        if name in self.expected_failures:
            request.node.add_marker(pytest.mark.xfail(reason=self.expected_failures[name], strict=False))

    @pytest.fixture(scope="class")
    @classmethod
    def shared_executor(cls) -> Any:
        ex = cls()._fresh()
        try:
            yield ex
        finally:
            ex.shutdown()

    @pytest.fixture
    def run(self, shared_executor: Executor) -> Any:
        with tempfile.TemporaryDirectory(prefix="nasforge-contract-") as folder:
            r = _Run(shared_executor, folder)
            assert shared_executor.running() == 0, "a previous check left tasks behind"
            try:
                yield r
            finally:  # leave the executor clean for the next check, whatever happened
                if shared_executor.running():
                    for task_id in r.submitted:
                        shared_executor.cancel(task_id)
                    end = time.monotonic() + PATIENCE
                    while shared_executor.running() and time.monotonic() < end:
                        shared_executor.poll(1.0, lambda *a: False)

    def _fresh(self) -> Executor:
        ex = self.make_executor(self.concurrency)
        ex.register("contract", contract_task)
        ex.start()
        return ex

    def _needs(self, flag: str) -> None:
        if not getattr(self, flag):
            pytest.skip(f"{type(self).__name__} does not claim {flag}")

    # -- the interface ----------------------------------------------------------------------------------
    def test_is_an_executor_with_idle_capacity(self, run: _Run) -> None:
        ex = run.ex
        assert isinstance(ex, Executor)
        assert isinstance(ex.capacity, int) and ex.capacity >= 1
        assert ex.idle_slots() == ex.capacity
        assert ex.running() == 0

    def test_submit_and_complete(self, run: _Run) -> None:
        before = time.time()
        started = run.submit(0, "ok", score=0.25)
        assert isinstance(started, float) and before - 1 <= started <= time.time() + 1
        assert run.ex.running() == 1
        c = run.collect(1)[0]
        assert (c.task_id, c.status, c.error) == (0, "ok", None)
        assert c.value["score"] == 0.25
        assert isinstance(c.worker, str) and c.worker
        assert c.started is not None and c.finished is not None
        assert before - 1 <= c.started <= c.finished <= time.time() + 1
        assert run.ex.running() == 0 and run.ex.idle_slots() == run.ex.capacity
        assert run.runs(0) == 1

    def test_unknown_key_and_full_executor_are_refused(self, run: _Run) -> None:
        with pytest.raises(KeyError, match="no runner registered under 'nope'"):
            run.ex.submit(0, "nope", None)
        for i in range(run.ex.capacity):
            run.submit(i, "sleep", seconds=0.2)
        assert run.ex.idle_slots() == 0
        with pytest.raises(ExecutorError, match="no idle"):
            run.submit(99, "ok")
        done = run.collect(run.ex.capacity)
        assert sorted(done) == list(range(run.ex.capacity))
        assert run.runs(99) == 0

    def test_every_task_completes_exactly_once(self, run: _Run) -> None:
        done = run.collect(12, feed=[("ok", {"score": task}) for task in range(12)])
        assert {t: c.value["score"] for t, c in done.items()} == {t: float(t) for t in range(12)}
        assert all(run.runs(t) == 1 for t in range(12)), "a task ran more than once"

    def test_runs_tasks_at_the_same_time(self, run: _Run) -> None:
        if run.ex.capacity < 2:
            pytest.skip("capacity 1")
        run.submit(0, "pair", partner=1)
        run.submit(1, "pair", partner=0)
        done = run.collect(2)
        assert done[0].value["concurrent"] == 1.0 and done[1].value["concurrent"] == 1.0
        assert run.read("pid", 0) != run.read("pid", 1) or not self.isolates_crashes

    # -- reports, early stop, cancellation ----------------------------------------------------------------
    def test_reports_stream_while_the_task_runs(self, run: _Run) -> None:
        c = run.one(0, "stream")
        assert c.status == "ok" and c.value["seen_while_running"] == 1.0
        assert run.reports == [(0, 0, {"score": 0.0})]

    def test_early_stop_answers_the_report_that_asked(self, run: _Run) -> None:
        run.stop_at = {0: 3, 1: 2}
        c = run.one(0, "report")
        assert c.status == "ok" and c.value["stopped_at"] == 3.0
        assert [step for task, step, _ in run.reports if task == 0] == [0, 1, 2, 3]
        c = run.one(1, "context")  # through TrialContext: TrialStopped -> status "stopped"
        assert c.status == "stopped" and c.error is None
        assert c.value == {"score": 2.0}
        assert run.runs(0) == 1 and run.runs(1) == 1

    def test_cancel_a_running_task(self, run: _Run) -> None:
        assert run.ex.cancel(12345) is False
        if self.cancels_running:
            run.submit(0, "sleep")
            pid = run.read("pid", 0)
            assert run.ex.cancel(0) is True
        else:  # cancelled at its next report
            run.submit(0, "report_forever")
            original = run.on_report

            def cancel_at_step_2(task_id: int, step: int, metrics: dict[str, float]) -> bool:
                if step == 2:
                    assert run.ex.cancel(task_id) is True
                return original(task_id, step, metrics)

            run.on_report = cancel_at_step_2  # type: ignore[method-assign]
            pid = None
        c = run.collect(1)[0]
        assert c.status == "cancelled" and c.error
        assert run.ex.cancel(0) is False  # finished: nothing to cancel
        if pid is not None and self.isolates_crashes:
            assert not _wait_dead([pid]), "the cancelled task's process still runs"
        assert run.one(1, "ok").status == "ok"  # capacity intact
        assert run.runs(0) == 1

    # -- failures ---------------------------------------------------------------------------------------------
    def test_exception_is_recorded_with_its_traceback(self, run: _Run) -> None:
        c = run.one(0, "raise")
        assert c.status == "error" and c.value is None
        assert str(c.error).startswith("RuntimeError: boom from task 0")
        assert "Traceback" in str(c.error) and "contract_task" in str(c.error)
        assert run.one(1, "ok").status == "ok"

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_nan_and_inf_results_fail(self, run: _Run, value: float) -> None:
        c = run.one(0, "bad_result", value=value)
        assert c.status == "error" and "non-finite" in str(c.error) and f"score={value}" in str(c.error)

    def test_timeout_of_a_reporting_task(self, run: _Run) -> None:
        c = run.one(0, "report_forever", timeout=1.0)
        assert c.status == "error" and c.error == "timeout after 1 s"
        assert run.one(1, "ok").status == "ok"
        assert run.runs(0) == 1

    def test_timeout_of_a_silent_task(self, run: _Run) -> None:
        self._needs("hard_timeouts")
        c = run.one(0, "sleep", timeout=1.0)
        assert c.status == "error" and c.error == "timeout after 1 s"
        assert c.finished is not None and c.started is not None and c.finished - c.started >= 0.9
        assert not _wait_dead([run.read("pid", 0)]), "the timed-out task's process still runs"
        assert run.one(1, "ok").status == "ok"

    def test_timeout_kills_the_processes_a_task_started(self, run: _Run) -> None:
        self._needs("hard_timeouts")
        self._needs("kills_helpers")
        c = run.one(0, "helper", timeout=2.0)
        assert c.error == "timeout after 2 s"
        helper = run.read("helper", 0)
        _assert_dead([helper], f"helper process {helper} outlived its timed-out task", 10.0)

    def test_worker_exit_fails_only_its_task(self, run: _Run) -> None:
        self._needs("isolates_crashes")
        neighbours = list(range(1, run.ex.capacity))  # running beside it: must not be disturbed
        for task in neighbours:
            run.submit(task, "sleep", seconds=1.0)
        run.submit(0, "exit")
        done = run.collect(1 + len(neighbours))
        c = done[0]
        assert all(done[task].status == "ok" for task in neighbours)
        assert c.status == "error" and "exited with code 3" in str(c.error)
        assert run.one(100, "ok").status == "ok"
        assert run.runs(0) == 1 and all(run.runs(task) == 1 for task in neighbours)

    def test_segfault_fails_only_its_task(self, run: _Run) -> None:
        self._needs("isolates_crashes")
        c = run.one(0, "segv")
        assert c.status == "error" and "SIGSEGV" in str(c.error)
        assert run.one(1, "ok").status == "ok"
        assert run.runs(0) == 1

    def test_worker_killed_mid_task(self, run: _Run) -> None:
        self._needs("isolates_crashes")
        run.submit(0, "sleep")
        pid = run.read("pid", 0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        c = run.collect(1)[0]
        assert c.status == "error" and "SIGKILL" in str(c.error)
        assert run.runs(0) == 1, "the killed task was run again"
        for i in range(1, 1 + run.ex.capacity):  # every slot works again
            run.submit(i, "ok")
        done = run.collect(run.ex.capacity)
        assert all(c.status == "ok" for c in done.values())

    def test_capacity_is_intact_after_failures(self, run: _Run) -> None:
        kinds = ["raise", "ok", "bad_result", "ok"]
        if self.isolates_crashes:
            kinds += ["exit", "segv", "ok"]
        done = run.collect(len(kinds), feed=[(kind, {"value": math.nan}) for kind in kinds])
        assert [done[i].status for i in range(len(kinds))] == ["ok" if k == "ok" else "error" for k in kinds]
        assert all(run.runs(i) == 1 for i in range(len(kinds)))
        assert run.ex.idle_slots() == run.ex.capacity

    # -- registration -------------------------------------------------------------------------------------------
    def test_unpicklable_runner_is_refused_at_register(self, run: _Run) -> None:
        self._needs("pickles_runners")
        import threading

        lock = threading.Lock()

        def holds_a_lock(args: Any, channel: Any) -> Any:
            return lock

        with pytest.raises(TypeError, match="'locked'.*cannot be pickled"):
            run.ex.register("locked", holds_a_lock)

    def test_closures_travel_to_the_worker(self, run: _Run) -> None:
        offset = 41

        def add(args: Any, channel: Any) -> Any:  # not importable: travels by value
            return {"score": float(args + offset)}

        run.ex.register("add", add)
        run.ex.submit(0, "add", 1)
        c = run.collect(1)[0]
        assert c.status == "ok" and c.value == {"score": 42.0}

    # -- shutdown ---------------------------------------------------------------------------------------------------
    def test_shutdown_leaves_no_worker_processes(self) -> None:
        with tempfile.TemporaryDirectory(prefix="nasforge-contract-") as folder:
            ex = self._fresh()
            try:
                run = _Run(ex, folder)
                n = ex.capacity
                for i in range(n):
                    run.submit(i, "ok")
                run.collect(n)
                if self.isolates_crashes:
                    run.submit(n, "sleep")  # one still running at shutdown
                    pids = {run.read("pid", i) for i in range(n + 1)}
            finally:
                ex.shutdown()
            ex.shutdown()  # idempotent
            if not self.isolates_crashes:
                return  # tasks ran in this very process
            assert os.getpid() not in pids
            _assert_dead(sorted(pids), "worker processes outlived shutdown()")

    def test_shutdown_kills_the_processes_a_task_started(self) -> None:
        self._needs("kills_helpers")
        with tempfile.TemporaryDirectory(prefix="nasforge-contract-") as folder:
            ex = self._fresh()
            try:
                run = _Run(ex, folder)
                run.submit(0, "helper")
                helper = run.read("helper", 0)
            finally:
                ex.shutdown()
            _assert_dead([helper], f"helper process {helper} outlived shutdown()", 10.0)
