"""The body of a local worker process (started by :class:`~nasforge.execution.local.LocalExecutor`).

A worker is a fresh interpreter (never a fork). It receives, over one duplex pipe:

* ``("init", {...})`` once: ``sys.path``, modules to import ahead (``torch``), thread count;
* ``("payload", key, bytes)``: a cloudpickled runner, once per key and worker;
* ``("run", task_id, key, args)``: confirm with ``("started", task_id)``, call the runner;
  reports go back as ``("report", …)`` and wait for an ``("ack", stop)``; the end is
  ``("done", task_id, status, value, error, lingering)`` where ``lingering`` names threads the
  task started and left running (they may kill the worker later: not the next task's fault);
* ``("exit",)`` or end-of-file: leave.

The worker leads its own process group (the executor starts it in a new session). When the
driver dies, a watchdog thread (and ``PR_SET_PDEATHSIG``) kill that whole group: the worker
and every process its evaluators started.

Every message is a plain ``pickle`` of a tuple sent with ``send_bytes`` (never
multiprocessing's reducers, which would try to share tensors through shared memory).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from nasforge.execution.base import TrialCancelled, TrialStopped, TrialTimeout

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _kill_own_group() -> None:
    """SIGKILL this worker and everything in its process group (evaluator helpers included)."""
    try:
        if os.getpgrp() == os.getpid():  # we lead our own group (always, under LocalExecutor)
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.2)
        if os.getppid() != parent_pid:
            _kill_own_group()


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker and its descendants die when the driver dies (a killed experiment
    leaves no orphans): Linux sends SIGTERM on the parent's death (its handler kills the group),
    and a watchdog thread notices the new parent if the main thread is busy in native code."""
    signal.signal(signal.SIGTERM, lambda signum, frame: _kill_own_group())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # an exotic libc: the watchdog alone
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="nasforge-watchdog", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _kill_own_group()


def set_threads(n: int | None) -> None:
    """Set torch's thread count where torch is loaded (``n`` None: leave it). Shared with inline."""
    if n and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def format_error(exc: BaseException) -> str:
    """``"Type: message"`` first, then the traceback (not for exceptions whose class sets
    ``brief = True``, such as the evaluator side's result-validation errors)."""
    head = f"{type(exc).__name__}: {exc}"
    if getattr(exc, "brief", False):
        return head
    return head + "\n\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class _PipeChannel:
    def __init__(self, conn: Connection, task_id: int, worker: str):
        self.conn = conn
        self.task_id = task_id
        self.worker = worker
        self.last_payload: Any = None

    def report(self, step: int, payload: Any) -> bool:
        self.last_payload = payload
        self.conn.send_bytes(pickle.dumps(("report", self.task_id, step, payload), _PROTOCOL))
        while True:
            msg = pickle.loads(self.conn.recv_bytes())
            if msg[0] == "ack":
                return bool(msg[1])
            if msg[0] == "exit":  # pragma: no cover - parent shutting down mid-trial
                os._exit(0)


def run_task(runner: Any, task_id: int, args: Any, channel: Any) -> tuple[str, Any, str | None]:
    """Call a runner and turn its outcome into ``(status, value, error)``. Shared with inline."""
    try:
        return "ok", runner(args, channel), None
    except TrialStopped:
        return "stopped", getattr(channel, "last_payload", None), None
    except (KeyboardInterrupt, TrialTimeout, TrialCancelled):
        raise
    except SystemExit as exc:
        return "error", None, f"SystemExit: the evaluator called sys.exit({exc.code!r})"
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is recorded
        return "error", None, format_error(exc)


class _Unloadable:
    def __init__(self, key: str, error: str):
        self.message = f"the {key!r} runner (evaluator / model space) could not be loaded in the worker: {error}"

    def __call__(self, args: Any, channel: Any) -> Any:
        raise RuntimeError(self.message)


def main(fd: int, parent_pid: int, name: str) -> None:
    _die_with_parent(parent_pid)
    conn = Connection(fd)
    try:
        kind, init = pickle.loads(conn.recv_bytes())
    except EOFError:
        return
    for entry in reversed(init.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    threads = init.get("threads")
    for module in init.get("preload", ()):
        importlib.import_module(module)
    set_threads(threads)
    conn.send_bytes(pickle.dumps(("ready", os.getpid()), _PROTOCOL))
    runners: dict[str, Any] = {}
    import cloudpickle

    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())
        except Exception:  # noqa: BLE001 - end of file, or a message cut short by the driver's Ctrl-C: leave quietly
            return
        kind = msg[0]
        if kind == "run":
            _, task_id, key, args = msg
            conn.send_bytes(pickle.dumps(("started", task_id), _PROTOCOL))
            before = set(threading.enumerate())
            channel = _PipeChannel(conn, task_id, name)
            status, value, error = run_task(runners[key], task_id, args, channel)
            lingering = ", ".join(sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive()))
            try:
                reply = pickle.dumps(("done", task_id, status, value, error, lingering), _PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result is the evaluator's fault
                reply = pickle.dumps(
                    ("done", task_id, "error", None, f"the result could not be pickled: {exc!r}", lingering), _PROTOCOL
                )
            conn.send_bytes(reply)
        elif kind == "payload":
            _, key, blob = msg
            try:
                runners[key] = cloudpickle.loads(blob)
            except Exception as exc:  # noqa: BLE001 - reported with every task that needs it
                runners[key] = _Unloadable(key, format_error(exc))
            set_threads(threads)  # torch may have been imported by the payload
        elif kind == "exit":
            return


if __name__ == "__main__":  # pragma: no cover - started by LocalExecutor
    with contextlib.suppress(KeyboardInterrupt):
        main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
