"""Issue 10: one owner per experiment, clean stops on signals, read-only readers, bad stores,
escaped CLI output, clear arch-file errors. Real processes, real signals, real SQLite files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nasforge
from nasforge import Categorical, Experiment, Space
from nasforge.cli import main as cli
from nasforge.evaluate import FunctionEvaluator
from nasforge.store import ExperimentLockedError, Store, StoreError
from nasforge.strategy import Random
from nasforge.trial import Trial, TrialStatus

SRC = os.path.dirname(os.path.dirname(nasforge.__file__))  # the nasforge under test
SPACE = Space([Categorical(list(range(1000)), label="x")])

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from nasforge import Categorical, Experiment, Space
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import Random

    space = Space([Categorical(list(range(1000)), label="x")])

    def evaluate(arch, ctx):
        time.sleep(float(os.environ.get("TRIAL_SLEEP", "0.2")))
        return {"score": arch["x"] / 1000}

    if __name__ == "__main__":
        Experiment(space, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False),
                   max_trials=int(sys.argv[2]), concurrency=2, store=sys.argv[1], name="job", seed=3,
                   executor=sys.argv[3] if len(sys.argv) > 3 else "local").run()
    """
)


def _env(**extra):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]), **extra}


def _driver(tmp_path, db, n, **popen):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen([sys.executable, str(script), str(db), str(n)], cwd=tmp_path, env=_env(),
                            stderr=subprocess.PIPE, text=True, **popen)


def _rows(db, where="1"):
    if not Path(db).exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(f"SELECT id, arch, status FROM trials WHERE {where} ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _wait_finished(proc, db, k, timeout=120):
    end = time.monotonic() + timeout
    while len(_rows(db, "status = 'SUCCEEDED'")) < k:
        assert proc.poll() is None, f"the driver ended early: {proc.stderr.read() if proc.stderr else ''}"
        assert time.monotonic() < end, "the driver made no progress"
        time.sleep(0.05)


def _evaluate(arch, ctx):
    return {"score": arch["x"] / 1000}


# -- 1. one owner per experiment -------------------------------------------------------------------
def test_a_second_driver_is_refused_while_the_owner_lives_and_takes_over_after_it_dies(tmp_path, capsys):
    db = tmp_path / "s.db"
    proc = _driver(tmp_path, db, 40)
    try:
        _wait_finished(proc, db, 2)
        reader = Store(db, readonly=True)
        owner = reader.owner("job")
        assert owner["alive"] and owner["pid"] == proc.pid and owner["host"]
        assert owner["started_at"] <= owner["heartbeat_at"] <= time.time() + 1
        assert reader.live_status("job") == "running"
        second = Experiment(SPACE, Random(dedup=True), FunctionEvaluator(_evaluate, uses_model=False),
                            max_trials=40, store=db, name="job", executor="inline", progress=False)
        with pytest.raises(ExperimentLockedError, match=f"pid {proc.pid} on host"):
            second.run()
        assert len(second.trials()) >= 2  # reading needs no lease
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert not reader.owner("job")["alive"] and reader.live_status("job") == "interrupted"
    assert cli(["show", str(db)]) == 0 and "(interrupted;" in capsys.readouterr().out
    summary = second.run()  # the dead owner's lease is taken over
    assert summary.n_trials == 40 and reader.live_status("job") == "done"
    rows = _rows(db)
    assert [r[0] for r in rows] == list(range(40)) and {r[2] for r in rows} == {"SUCCEEDED"}
    assert len({r[1] for r in rows}) == 40
    assert reader.owner("job")["pid"] == os.getpid() and not reader.owner("job")["alive"]


def test_two_experiment_objects_in_one_process_cannot_run_the_same_name(tmp_path):
    db = tmp_path / "s.db"
    store = Store(db)
    exp_id = store.create_experiment("job", {})
    lease = store.acquire(exp_id, "job")
    other = Store(db)
    with pytest.raises(ExperimentLockedError, match="this very process"):
        other.acquire(exp_id, "job", wait=0.2)
    assert Store(db, readonly=True).owner("job")["alive"]
    lease.release()
    other.acquire(exp_id, "job").release()
    assert Store(db, readonly=True).live_status("job") == "interrupted"


# -- 7. signals stop cleanly; show says "interrupted" -------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_stop_the_driver_cleanly_and_a_rerun_resumes(tmp_path, sig, capsys):
    db = tmp_path / "s.db"
    proc = _driver(tmp_path, db, 14, start_new_session=True)
    try:
        _wait_finished(proc, db, 3)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C in a terminal: the whole foreground process group
        else:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted; ") and lines[0].endswith("re-queued; re-run to resume"), err
    assert proc.returncode == -sig
    assert _rows(db, "status = 'RUNNING'") == []
    assert Store(db, readonly=True).live_status("job") == "interrupted"
    assert cli(["show", str(db)]) == 0 and "(interrupted;" in capsys.readouterr().out
    done = len(_rows(db, "status = 'SUCCEEDED'"))
    waiting = len(_rows(db, "status = 'WAITING'"))
    assert lines[0] == f"interrupted; {waiting} running trial{'s' if waiting != 1 else ''} re-queued; re-run to resume"
    rerun = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(db), "14"], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming 'job': {done} finished trials kept, {waiting} re-queued" in rerun.stderr
    rows = _rows(db)
    assert len(rows) == 14 and {r[2] for r in rows} == {"SUCCEEDED"}
    assert Store(db, readonly=True).live_status("job") == "done"


def test_an_ignored_sighup_stays_ignored(tmp_path):
    """Under ``nohup`` (SIGHUP ignored) a hang-up must not stop the search."""
    db = tmp_path / "s.db"
    proc = _driver(tmp_path, db, 8, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        _wait_finished(proc, db, 2)
        os.kill(proc.pid, signal.SIGHUP)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert len(_rows(db, "status = 'SUCCEEDED'")) == 8


# -- 5. read-only readers ---------------------------------------------------------------------------------
def _listing(folder):
    """Files, sizes and (except the -shm shared-memory index, where readers mark what they read)
    modification times."""
    return sorted((p.name, p.stat().st_size, 0 if p.name.endswith("-shm") else p.stat().st_mtime_ns)
                  for p in Path(folder).iterdir())


@pytest.fixture(params=["finished", "killed"])
def store_folder(request, tmp_path):
    """A store left by a driver that finished, or by one that was SIGKILLed (-wal/-shm remain)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "s.db"
    if request.param == "finished":
        subprocess.run([sys.executable, "-c", DRIVER.replace('if __name__ == "__main__":', "if True:"), str(db), "6", "inline"],
                       env=_env(TRIAL_SLEEP="0"), check=True, timeout=120)
    else:
        proc = _driver(tmp_path, db, 100)
        try:
            _wait_finished(proc, db, 3)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()
        for lock in folder.glob("*.lock"):
            lock.unlink()  # as if copied without it
    return folder, db


def test_reading_a_store_creates_no_file(store_folder, capsys):
    folder, db = store_folder
    before = _listing(folder)
    assert cli(["show", str(db)]) == 0
    assert "experiment 'job'" in capsys.readouterr().out
    assert cli(["export", str(db)]) == 0
    reader = Store(db, readonly=True)
    assert reader.trials(reader.experiment("job").id) and reader.live_status("job") in ("done", "interrupted")
    reader.close()
    assert _listing(folder) == before


def _run_readonly(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI with ``folder`` read-only: a read-only bind mount (as root), else permissions."""
    cmd = [sys.executable, "-m", "nasforge.cli", *args]
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("running as root without mount namespaces: cannot make a read-only folder")
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && touch "$1/probe" 2>/dev/null && exit 99; shift; exec "$@"'
        out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), *cmd], env=_env(),
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 99:
            pytest.skip("the read-only bind mount did not take effect")
        return out
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    try:
        return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(mode)


def test_show_works_on_a_read_only_folder(store_folder):
    folder, db = store_folder
    out = _run_readonly(folder, ["show", str(db)])
    assert out.returncode == 0, out.stderr
    assert "experiment 'job'" in out.stdout and "Traceback" not in out.stderr


# -- 8. bad stores ------------------------------------------------------------------------------------------
def _make_bad(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.db"
    if kind == "directory":
        path.mkdir()
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "text":
        path.write_text("name,score\na,1\n")
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        con.executemany("INSERT INTO invoices (total) VALUES (?)", [(i * 1.5,) for i in range(100)])
        con.commit()
        con.close()
    elif kind == "newer":
        store = Store(path)
        store._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        store.close()
    elif kind == "damaged":
        store = Store(path)
        exp = store.create_experiment("e", {"seed": 0})
        for i in range(300):
            store.add_trial(exp, Trial(id=i, arch={"x": "y" * 200}, status=TrialStatus.RUNNING))
        store.close()
        size = path.stat().st_size
        assert size > 8 * 4096
        with open(path, "r+b") as f:  # overwrite pages in the middle of the file
            f.seek(4 * 4096)
            f.write(os.urandom(3 * 4096))
    return path


BAD = ["directory", "pipe", "text", "foreign", "newer", "damaged"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", BAD)
def test_bad_stores_give_a_store_error_naming_the_file(kind, tmp_path, capsys):
    path = _make_bad(kind, tmp_path)
    snapshot = path.read_bytes() if path.is_file() else None
    for readonly in (False, True):
        with pytest.raises(StoreError, match=str(path.name)):
            store = Store(path, readonly=readonly)
            store.trials(store.experiments()[0].id)  # damaged pages may show only when read
    assert cli(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and path.name in err and "Traceback" not in err
    if kind == "foreign":  # refused untouched: same bytes, no -wal/-shm, still not in WAL mode
        assert path.read_bytes() == snapshot
        assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["invoices"]


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    store = Store(path)
    store.create_experiment("e", {})
    assert [r.name for r in Store(path, readonly=True).experiments()] == ["e"]


# -- 10. escaped CLI output -----------------------------------------------------------------------------------
def test_show_escapes_every_stored_string(tmp_path, capsys):
    db = tmp_path / "evil.db"
    store = Store(db)
    esc = "\x1b]0;owned\x07\x1b[2J\x9b31m"
    exp = store.create_experiment(f"e{esc}", {"metric": f"acc{esc}", "mode": f"max{esc}", "strategy": f"S{esc}",
                                               "space_size": f"9{esc}"})
    t = Trial(id=0, arch={"x": esc}, status=TrialStatus.RUNNING)
    store.add_trial(exp, t)
    t.status, t.metrics, t.score = TrialStatus.SUCCEEDED, {f"acc{esc}": 1.0, "params": 5.0}, 1.0
    store.finish_trial(exp, t)
    f = Trial(id=1, arch={"x": 1}, status=TrialStatus.RUNNING)
    store.add_trial(exp, f)
    f.status, f.error = TrialStatus.FAILED, f"RuntimeError: {esc}"
    store.finish_trial(exp, f)
    store.add_test(exp, 0, {"x": esc}, True, f"SUCCEEDED{esc}", {f"test_{esc}": 0.5})
    store.add_test(exp, 1, {"x": 1}, True, "FAILED", {}, error=f"boom{esc}")
    store.update_experiment(exp, status=f"done{esc}")
    store.close()
    assert cli(["show", str(db), "--failures"]) == 0
    out = capsys.readouterr().out
    assert "owned" in out and "boom" in out and "RuntimeError" in out  # shown, escaped
    assert not any(c in out for c in "\x1b\x07\x9b"), repr(out)
    assert cli(["export", str(db)]) == 0
    assert not any(c in capsys.readouterr().out for c in "\x1b\x07\x9b")


# -- 9. fixed_arch file errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,why", [(b"", "empty"), (b"  \n", "empty"), (b"{'x': 1}", "not valid JSON"),
                                         (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "binary"), (b"[1, 2]", "object of label"),
                                         (b"op: conv3x3\n", "not valid JSON")])
def test_fixed_arch_file_errors_name_the_file(tmp_path, content, why):
    path = tmp_path / "best_arch.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"best_arch.json.*{why}"):
        with nasforge.fixed_arch(path):
            pass
