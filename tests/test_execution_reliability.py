"""Local executor reliability: blame only the guilty task, no leaked processes, no cwd imports.

Real worker processes, real helper processes, real signals (issue 10, defects 2-4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from nasforge.execution import LocalExecutor


def _collect(ex, n, timeout=60.0):
    done = []
    end = time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < end, f"only {len(done)} of {n} tasks finished"
        done += ex.poll(1.0, lambda *a: False)
    return {c.task_id: c for c in done}


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has already exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, within: float = 20.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def behave(args, channel):
    kind, *rest = args
    if kind == "ok":
        return {"score": 1.0, "pid": os.getpid()}
    if kind == "sleep":
        time.sleep(rest[0])
        return {"score": 1.0, "pid": os.getpid()}
    if kind == "exit_later":  # returns its result, but a thread it left behind kills the worker
        flag = Path(rest[0])  # ... once the test creates this file

        def die():
            while not flag.exists():
                time.sleep(0.005)
            os._exit(3)

        threading.Thread(target=die, name="stray").start()
        return {"score": 1.0, "pid": os.getpid()}
    if kind == "helper":  # starts a long-lived helper process, records its pid, then waits
        folder, wait = rest
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        Path(folder, "helper.pid").write_text(str(helper.pid))
        time.sleep(wait)
        return {"score": 1.0, "pid": os.getpid()}
    if kind == "modules":
        import ctypes
        import json

        return {"ctypes": ctypes.__file__, "json": json.__file__}
    raise AssertionError(kind)


@pytest.mark.parametrize("when", ["with the next submit", "while the next task runs"])
def test_a_worker_killed_by_a_thread_of_the_previous_task_does_not_fail_the_next(tmp_path, when):
    """The stray thread kills the worker as the next task arrives, or while it runs there: the
    next task is run again on a fresh worker and succeeds; the guilty one succeeded too."""
    flag = tmp_path / "die"
    with LocalExecutor(1) as ex:
        ex.register("b", behave)
        ex.submit(0, "b", ("exit_later", str(flag)))
        first = _collect(ex, 1)
        if when == "with the next submit":
            flag.write_text("")
        ex.submit(1, "b", ("sleep", 1.5))
        if when == "while the next task runs":
            ex.poll(0.5, lambda *a: False)
            flag.write_text("")
        second = _collect(ex, 1)
        ex.submit(2, "b", ("ok",))
        third = _collect(ex, 1)
    assert first[0].status == "ok"
    assert second[1].status == "ok", second[1].error
    assert third[2].status == "ok"
    assert second[1].value["pid"] != first[0].value["pid"]  # ran on the replacement


def test_a_broken_pipe_replaces_the_worker_and_the_task_runs(tmp_path):
    flag = tmp_path / "die"
    with LocalExecutor(1) as ex:
        ex.register("b", behave)
        ex.submit(0, "b", ("exit_later", str(flag)))
        first = _collect(ex, 1)
        flag.write_text("")
        pid = first[0].value["pid"]
        assert _wait_dead(pid)  # the worker is gone before the next submit writes to its pipe
        ex.submit(1, "b", ("ok",))  # used to raise BrokenPipeError
        second = _collect(ex, 1)
    assert second[1].status == "ok" and second[1].value["pid"] != pid


def test_a_task_that_kills_its_own_worker_is_still_blamed():
    def suicide(args, channel):
        os._exit(5)

    with LocalExecutor(1) as ex:
        ex.register("s", suicide)
        ex.submit(0, "s", None)
        done = _collect(ex, 1)
    assert done[0].status == "error" and "code 5" in done[0].error


@pytest.mark.parametrize("how", ["timeout", "shutdown"])
def test_helper_processes_die_with_their_worker(tmp_path, how):
    with LocalExecutor(1) as ex:
        ex.register("b", behave)
        if how == "timeout":
            ex.submit(0, "b", ("helper", str(tmp_path), 60), timeout=3.0)
            done = _collect(ex, 1)
            assert done[0].status == "error" and done[0].error.startswith("timeout")
        else:
            ex.submit(0, "b", ("helper", str(tmp_path), 60))
            end = time.monotonic() + 60
            while not (tmp_path / "helper.pid").exists():
                assert time.monotonic() < end
                ex.poll(0.1, lambda *a: False)
    helper = int((tmp_path / "helper.pid").read_text())
    assert _wait_dead(helper), f"helper {helper} outlived its worker ({how})"


DRIVER = textwrap.dedent(
    """
    import sys, time
    from nasforge.execution import LocalExecutor
    sys.path.insert(0, sys.argv[2])
    from test_execution_reliability import behave

    with LocalExecutor(1) as ex:
        ex.register("b", behave)
        ex.submit(0, "b", ("helper", sys.argv[1], 120))
        while True:
            ex.poll(1.0, lambda *a: False)
    """
)


def test_helper_and_worker_die_when_the_driver_is_killed(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    import nasforge

    src = os.path.dirname(os.path.dirname(nasforge.__file__))  # the nasforge under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(Path(__file__).parent)], env=env)
    try:
        end = time.monotonic() + 90
        while not (tmp_path / "helper.pid").exists():
            assert proc.poll() is None, "the driver died early"
            assert time.monotonic() < end, "the helper never started"
            time.sleep(0.05)
        helper = int((tmp_path / "helper.pid").read_text())
        worker = int(Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_dead(worker), "the worker outlived the driver"
    assert _wait_dead(helper), "the evaluator's helper outlived the driver"


def test_workers_do_not_import_modules_from_the_current_directory(tmp_path, monkeypatch):
    for name in ("ctypes", "json"):
        (tmp_path / f"{name}.py").write_text(
            f"import pathlib\npathlib.Path({str(tmp_path)!r}, 'imported-{name}').write_text('x')\n"
            f"raise ImportError('shadowed {name} imported from the current directory')\n"
        )
    monkeypatch.chdir(tmp_path)
    with LocalExecutor(1) as ex:
        ex.register("b", behave)
        ex.submit(0, "b", ("modules",))
        done = _collect(ex, 1)
    assert done[0].status == "ok", done[0].error
    assert not list(tmp_path.glob("imported-*"))
    assert not done[0].value["ctypes"].startswith(str(tmp_path))
