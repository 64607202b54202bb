"""A pool of warm local worker processes with per-task time limits and crash isolation."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

import nasforge
from nasforge.execution.base import Completion, Executor, ExecutorError, ReportCallback
from nasforge.execution.gpus import cuda_visible_devices_for

__all__ = ["LocalExecutor", "available_cores"]

logger = logging.getLogger("nasforge.execution.local")

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_MAX_START_FAILURES = 3


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def describe_exit(returncode: int) -> str:
    """``"worker died with signal 11 (SIGSEGV)"`` or ``"worker exited with code 3"``."""
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:  # pragma: no cover
            name = ""
        return f"worker died with signal {-returncode}{name}"
    return f"worker exited with code {returncode} while running the trial"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a worker's whole process group (the worker and whatever its evaluator started).

    Call it before the worker is reaped: while the leader is alive or a zombie, its process
    group id cannot be reused by an unrelated process.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the worker to exit *without reaping it* (see :func:`_kill_group`)."""
    if not hasattr(os, "waitid"):  # pragma: no cover - macOS: reap, then kill the group by its id
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    end = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped
            return True
        if info is not None:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(delay)
        delay = min(0.05, delay * 2)


def _reap(proc: subprocess.Popen, timeout: float = 0.0) -> int:
    """Kill the worker's process group and reap the worker; returns its exit code."""
    if not _exited(proc, timeout):
        proc.kill()
    _kill_group(proc)
    return proc.wait()


@dataclass(eq=False, slots=True)
class _Worker:
    name: str
    proc: subprocess.Popen
    conn: Connection
    ready: bool = False
    keys: set[str] = field(default_factory=set)
    task: int | None = None
    key: str | None = None
    args: Any = None
    started: float = 0.0
    deadline: float | None = None
    timeout: float | None = None
    begun: bool = False  # the worker confirmed that it started the current task
    tainted: str = ""  # threads an earlier task left running (they may kill the worker later)


class LocalExecutor(Executor):
    """Runs tasks in ``n_workers`` warm worker processes on this machine.

    Each worker is a fresh interpreter (spawned, never forked) that is started once and reused:
    imports (``preload``, e.g. ``("torch",)``) and the registered runners (shipped with
    cloudpickle, so classes and functions defined in a user's ``__main__`` script work) are paid
    once per worker, not per task. Each worker limits torch / OpenMP to its share of the cores.

    A task that runs past its ``timeout`` is killed with its worker; a worker that dies (a
    segfault, ``os._exit``, the OOM killer) fails only its task; either way a fresh worker
    replaces it. A task that a dying worker had not started yet (it died right after its
    previous task, or the pipe to it was broken) is given to the replacement, never failed;
    so is a task running on a worker in which an earlier task left threads behind (the likely
    culprit), once.

    Each worker runs in its own session and process group, so processes an evaluator starts
    are killed with it (on timeout, on shutdown, and when the driver itself dies), and a
    Ctrl-C in the terminal reaches only the driver. Workers import with the driver's
    ``sys.path`` (never the current directory's files).

    ``gpus=[0, 1, …]`` runs one worker per entry, each seeing only its GPU (its own
    ``CUDA_VISIBLE_DEVICES``, kept by its replacements), so ``device="auto"`` trains each trial
    on its worker's GPU; see :func:`~nasforge.execution.gpus.cuda_visible_devices_for`.

    Example::

        with LocalExecutor(2) as ex:
            ex.register("square", lambda x, channel: x * x)
            ex.submit(0, "square", 3)
            done = ex.poll(10, on_report=lambda *a: False)   # [Completion(task_id=0, value=9, …)]
    """

    name = "local"

    def __init__(
        self,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        preload: Iterable[str] = (),
        env: dict[str, str] | None = None,
        gpus: Sequence[int | str] | None = None,
    ):
        self._gpu_env = cuda_visible_devices_for(gpus) if gpus is not None else None
        if n_workers is None:
            n_workers = len(self._gpu_env) if self._gpu_env is not None else 2
        elif self._gpu_env is not None and n_workers != len(self._gpu_env):
            raise ValueError(
                f"n_workers={n_workers!r} but gpus has {len(self._gpu_env)} entries: one worker per entry "
                f"(repeat an index, e.g. gpus=[0, 0, 1, 1], to share a GPU)"
            )
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be a positive int, got {n_workers!r}")
        if threads_per_worker is not None and (not isinstance(threads_per_worker, int) or threads_per_worker < 1):
            raise ValueError(f"threads_per_worker must be a positive int or None, got {threads_per_worker!r}")
        self.n_workers = n_workers
        self.threads = threads_per_worker or max(1, available_cores() // n_workers)
        self.preload = tuple(preload)
        self.env = dict(env or {})
        self._runners: dict[str, bytes] = {}
        self._workers: list[_Worker] = []
        self._counter = 0
        self._start_failures = 0
        self._started = False
        self._resends: dict[int, int] = {}  # task id -> times given to a replacement worker
        self._pending_done: list[Completion] = []  # failures / cancellations found outside poll, reported by it

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.n_workers

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for index in range(self.n_workers):
            self._workers.append(self._spawn(index))

    def _spawn(self, index: int) -> _Worker:
        name = f"local-{self._counter}"
        self._counter += 1
        parent_conn, child_conn = Pipe(duplex=True)
        fd = child_conn.fileno()
        env = os.environ.copy()
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(self.threads)
        env.update(self.env)
        if self._gpu_env is not None:
            env["CUDA_VISIBLE_DEVICES"] = self._gpu_env[index]
        # The worker imports exactly what the driver would: its sys.path (with "" made absolute),
        # set before the first import; `-P` (3.11+) keeps the current directory out at start-up.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(nasforge.__file__)))
        path = [os.path.abspath(p) if p in ("", ".") else p for p in sys.path]
        if package_root not in path:
            path.insert(0, package_root)
        code = (
            "import sys; sys.path[:] = sys.argv[4:]; "
            "from nasforge.execution.worker import main; "
            "main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])"
        )
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        proc = subprocess.Popen(
            [sys.executable, *flags, "-c", code, str(fd), str(os.getpid()), name, *path],
            pass_fds=(fd,),
            env=env,
            close_fds=True,
            start_new_session=True,  # own process group: killed as a whole, deaf to the terminal's Ctrl-C
        )
        child_conn.close()
        init = {"sys_path": path, "preload": self.preload, "threads": self.threads}
        parent_conn.send_bytes(pickle.dumps(("init", init), _PROTOCOL))
        logger.debug("started worker %s (pid %d, %d threads)", name, proc.pid, self.threads)
        return _Worker(name, proc, parent_conn)

    def shutdown(self) -> None:
        workers, self._workers = self._workers, []
        for w in workers:
            if w.task is None:
                with contextlib.suppress(OSError):
                    w.conn.send_bytes(pickle.dumps(("exit",), _PROTOCOL))
        deadline = time.monotonic() + 2.0
        for w in workers:
            if w.task is not None:
                _kill_group(w.proc)
            _reap(w.proc, max(0.0, deadline - time.monotonic()))
            w.conn.close()
        self._started = False

    def __del__(self) -> None:  # best effort: never leave workers behind
        for w in getattr(self, "_workers", []):
            with contextlib.suppress(Exception):
                _kill_group(w.proc)
                w.proc.kill()

    # -- tasks ------------------------------------------------------------------------------------
    def register(self, key: str, runner: Callable[[Any, Any], Any]) -> None:
        try:
            self._runners[key] = cloudpickle.dumps(runner, protocol=_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"the {key!r} runner (evaluator / model space) cannot be pickled for the worker "
                f"processes: {exc!r}; make it picklable or use executor='inline'"
            ) from exc
        for w in self._workers:
            w.keys.discard(key)

    def idle_slots(self) -> int:
        return sum(1 for w in self._workers if w.task is None)

    def running(self) -> int:
        return sum(1 for w in self._workers if w.task is not None) + len(self._pending_done)

    def submit(self, task_id: int, key: str, args: Any, timeout: float | None = None) -> float:
        if key not in self._runners:
            raise KeyError(f"no runner registered under {key!r}")
        self.start()
        worker = next((w for w in self._workers if w.task is None), None)
        if worker is None:
            raise ExecutorError("submit() called with no idle worker; check idle_slots() first")
        self._resends.pop(task_id, None)
        return self._send_task(worker, task_id, key, args, timeout)

    def _send_task(self, worker: _Worker, task_id: int, key: str, args: Any, timeout: float | None) -> float:
        worker.task, worker.key, worker.args, worker.timeout = task_id, key, args, timeout
        worker.begun = False
        worker.started = time.time()
        try:
            if key not in worker.keys:
                worker.conn.send_bytes(pickle.dumps(("payload", key, self._runners[key]), _PROTOCOL))
                worker.keys.add(key)
            worker.conn.send_bytes(pickle.dumps(("run", task_id, key, args), _PROTOCOL))
        except OSError:  # a broken pipe: the worker is gone; the task goes to its replacement
            worker.deadline = None
            started = worker.started
            self._on_death(worker, self._pending_done)
            return started
        # The time limit starts when the worker is ready (process start is not the trial's fault).
        worker.deadline = time.monotonic() + timeout if (timeout and worker.ready) else None
        return worker.started

    def cancel(self, task_id: int) -> bool:
        worker = next((w for w in self._workers if w.task == task_id), None)
        if worker is None:
            return False
        logger.info("cancelling trial %s on %s", task_id, worker.name)
        _kill_group(worker.proc)
        _reap(worker.proc)
        self._pending_done.append(Completion(task_id, "cancelled", None, "cancelled", worker.name, worker.started, time.time()))
        self._resends.pop(task_id, None)
        worker.task = None
        self._replace(worker)
        return True

    def poll(self, timeout: float | None, on_report: ReportCallback) -> list[Completion]:
        done, self._pending_done = self._pending_done, []
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            deadlines = [w.deadline for w in self._workers if w.deadline is not None]
            limits = deadlines if end is None else [*deadlines, end]  # wait until the first one
            wait_for = 0.0 if done else max(0.0, min(limits) - time.monotonic()) if limits else None
            ready = wait([w.conn for w in self._workers], timeout=wait_for) if self._workers else []
            by_conn = {id(w.conn): w for w in self._workers}
            for conn in ready:
                worker = by_conn.get(id(conn))
                if worker is not None:
                    self._drain(worker, on_report, done)
            self._check_deadlines(done)
            if done or not self._workers or (end is not None and time.monotonic() >= end):
                return done

    def _drain(self, w: _Worker, on_report: ReportCallback, done: list[Completion]) -> None:
        while True:
            try:
                msg = pickle.loads(w.conn.recv_bytes())
            except (EOFError, OSError):
                self._on_death(w, done)
                return
            kind = msg[0]
            if kind == "report":
                _, task_id, step, payload = msg
                stop = bool(on_report(task_id, step, payload))
                with contextlib.suppress(OSError):
                    w.conn.send_bytes(pickle.dumps(("ack", stop), _PROTOCOL))
            elif kind == "started":
                w.begun = True
            elif kind == "done":
                _, task_id, status, value, error, *rest = msg
                done.append(Completion(task_id, status, value, error, w.name, w.started, time.time()))
                self._resends.pop(task_id, None)
                w.task = None
                w.deadline = None
                if rest and rest[0]:
                    w.tainted = f"trial {task_id} left threads running: {rest[0]}"
                    logger.warning("%s on %s", w.tainted, w.name)
            elif kind == "ready":
                w.ready = True
                self._start_failures = 0
                if w.task is not None:  # the task starts now, not when the process was spawned
                    w.started = time.time()
                    if w.timeout:
                        w.deadline = time.monotonic() + w.timeout
            if not w.conn.poll(0):
                return

    def _check_deadlines(self, done: list[Completion]) -> None:
        t = time.monotonic()
        for w in list(self._workers):
            if w.deadline is not None and w.task is not None and t >= w.deadline:
                logger.info("trial %s on %s ran past %s s; killing the worker", w.task, w.name, w.timeout)
                _kill_group(w.proc)
                _reap(w.proc)
                done.append(Completion(w.task, "error", None, f"timeout after {w.timeout:g} s", w.name, w.started, time.time()))
                w.task = None
                self._replace(w)

    def _on_death(self, w: _Worker, done: list[Completion]) -> None:
        reason = describe_exit(_reap(w.proc, 5.0))  # pipe closed, alive after 5 s: killed
        if not w.ready:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self._workers.remove(w)
                w.conn.close()
                raise ExecutorError(
                    f"local worker processes keep dying during start-up ({reason}); see their "
                    f"output above (is nasforge importable by {sys.executable}?)"
                )
        if w.task is not None:
            resends = self._resends.get(w.task, 0)
            # Not the task's fault when it never started there (the worker died during start-up,
            # right after its previous task, or the pipe broke), or, once, when an earlier task
            # left threads running in that worker: run it on the replacement instead.
            innocent = (not w.ready or not w.begun) and resends < _MAX_START_FAILURES
            suspect = w.begun and w.tainted and resends == 0
            if (innocent or suspect) and w.key is not None:  # a worker with a task has its key
                task, key, args, timeout = w.task, w.key, w.args, w.timeout
                logger.warning(
                    "%s (%s) before trial %s could %s; giving the trial to a fresh worker",
                    reason, w.name, task, f"finish ({w.tainted})" if suspect and not innocent else "start",
                )
                self._resends[task] = resends + 1
                w.task = None
                self._send_task(self._replace(w), task, key, args, timeout)
                return
        logger.warning("%s (%s)", reason, w.name)
        if w.task is not None:
            if not w.begun:
                reason = f"{reason}; workers died {self._resends.get(w.task, 0) + 1} times before the trial could start"
            done.append(Completion(w.task, "error", None, reason, w.name, w.started, time.time()))
            self._resends.pop(w.task, None)
            w.task = None
        self._replace(w)

    def _replace(self, w: _Worker) -> _Worker:
        w.conn.close()
        index = self._workers.index(w)
        self._workers[index] = new = self._spawn(index)
        return new
