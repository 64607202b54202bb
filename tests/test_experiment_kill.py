"""Kill test: SIGKILL an experiment midway, run it again, get exactly the planned trials."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from nasforge import Categorical, Experiment, Space
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import Random

    space = Space([Categorical(list(range(1000)), label="x")])

    def evaluate(arch, ctx):   # defined in __main__: travels to the workers with cloudpickle
        time.sleep(0.2)
        ctx.report(0, {"score": 0.0})
        return {"score": arch["x"] / 1000, "x": arch["x"]}

    if __name__ == "__main__":
        exp = Experiment(space, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False),
                         max_trials=30, concurrency=2, store=sys.argv[1], name="kill", seed=3,
                         executor="local")
        exp.run()
    """
)


def _finished(db):
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT id, arch, status, metrics FROM trials WHERE status = 'SUCCEEDED'").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        rows = []
    finally:
        con.close()
    return {r[0]: r for r in rows}


def test_sigkill_midway_then_rerun_gives_exactly_30_trials(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    db = tmp_path / "kill.db"
    proc = subprocess.Popen([sys.executable, str(script), str(db)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(_finished(db)) < 8:
            assert proc.poll() is None, "the experiment ended before it could be killed"
            assert time.monotonic() < deadline, "the experiment made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    before = _finished(db)
    assert 8 <= len(before) < 30
    con = sqlite3.connect(db)
    interrupted = con.execute("SELECT COUNT(*) FROM trials WHERE status = 'RUNNING'").fetchone()[0]
    con.close()
    assert interrupted <= 2  # at most the trials that were running are lost

    rerun = subprocess.run([sys.executable, str(script), str(db)], cwd=tmp_path, timeout=120)
    assert rerun.returncode == 0

    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, arch, status, metrics FROM trials").fetchall()
    archs = [r[1] for r in rows]
    con.close()
    assert len(rows) == 30
    assert sorted(r[0] for r in rows) == list(range(30))
    assert all(r[2] == "SUCCEEDED" for r in rows)
    assert len(set(archs)) == 30  # no arch evaluated twice (the strategy's state was restored)
    after = {r[0]: r for r in rows}
    for tid, row in before.items():
        assert after[tid] == row  # finished before the kill: untouched
