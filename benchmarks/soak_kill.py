"""Soak test: SIGKILL the driver of a local experiment again and again, then resume it once more.

    .venv/bin/python benchmarks/soak_kill.py [--trials 200] [--kills 20] [--seed 0]

A 200-trial experiment (``Random(dedup=True)``, 2 local workers, an SQLite file store) whose
evaluator starts a helper process per trial (``subprocess.Popen``, like a data loader or a
compiler would) is started, SIGKILLed at a random moment (0.3–4 s after it started, so also
during start-up and resume), started again, … ``--kills`` times; then it runs to the end.
Checked after every kill and at the end:

* exactly ``--trials`` trials, ids 0…n-1, all SUCCEEDED, no arch twice;
* no finished trial lost or changed by a later kill or resume (rows compared with snapshots);
* no trial recorded as finished twice; evaluator runs that completed but whose result died with
  the driver (the kill fell between the evaluator's return and the store's commit) are counted;
* no orphan: every worker and every helper process recorded by the evaluator is gone within
  a few seconds of each kill.

Prints a summary; exits non-zero when a check fails. ``tests/test_soak.py`` (marked slow) runs it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

DRIVER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from nasforge import Categorical, Experiment, Space
    from nasforge.evaluate import FunctionEvaluator
    from nasforge.strategy import Random

    space = Space([Categorical(list(range(10_000)), label="x")])
    LOG = sys.argv[3]

    def evaluate(arch, ctx):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(LOG, "a") as f:
            f.write(f"start {ctx.trial_id} {os.getpid()} {helper.pid}\\n")
        time.sleep(0.25)
        ctx.report(0, {"score": 0.0})
        time.sleep(0.1)
        helper.kill()
        helper.wait()
        with open(LOG, "a") as f:
            f.write(f"done {ctx.trial_id} {os.getpid()} {helper.pid}\\n")
        return {"score": arch["x"] / 10_000, "x": arch["x"]}

    if __name__ == "__main__":
        Experiment(space, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False),
                   max_trials=int(sys.argv[2]), concurrency=2, store=sys.argv[1], name="soak", seed=7,
                   executor="local", progress=False).run()
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _rows(db: Path) -> dict[int, tuple]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT id, arch, status, metrics, score, finished FROM trials").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        con.close()
    return {r[0]: r for r in rows}


def _log(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.append((parts[0], int(parts[1]), int(parts[2]), int(parts[3])))
    return out


def soak(n_trials: int = 200, n_kills: int = 20, seed: int = 0, folder: str | None = None) -> dict:
    """Run the soak; returns the findings (``ok`` is True when every check held)."""
    rng = random.Random(seed)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    tmp = tempfile.TemporaryDirectory() if folder is None else None
    root = Path(folder or tmp.name)
    script, db, log = root / "driver.py", root / "soak.db", root / "evaluations.log"
    script.write_text(DRIVER)
    cmd = [sys.executable, str(script), str(db), str(n_trials), str(log)]
    problems: list[str] = []
    snapshot: dict[int, tuple] = {}
    recorded_at: dict[int, int] = {}  # trial id -> evaluator log length when seen recorded
    orphans = 0
    kills = 0
    t0 = time.monotonic()
    try:
        while kills < n_kills:
            proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 4.0))
            if proc.poll() is not None:  # finished before the kill: the soak needs more trials
                problems.append(f"the experiment ended before kill {kills + 1} (exit {proc.returncode})")
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            pids = {p for _, _, worker, helper in _log(log) for p in (worker, helper)}
            end = time.monotonic() + 10
            while any(_alive(p) for p in pids) and time.monotonic() < end:
                time.sleep(0.05)
            left = sorted(p for p in pids if _alive(p))
            if left:
                orphans += len(left)
                problems.append(f"after kill {kills}: processes still alive: {left}")
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            rows = _rows(db)
            for tid, row in snapshot.items():
                if rows.get(tid) != row:
                    problems.append(f"after kill {kills}: finished trial {tid} changed: {row} -> {rows.get(tid)}")
            position = len(_log(log))  # evaluator log entries written before this snapshot
            for tid, r in rows.items():
                if r[2] == "SUCCEEDED" and tid not in snapshot:
                    snapshot[tid] = r
                    recorded_at[tid] = position
        final = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=1800)
        if final.returncode != 0:
            problems.append(f"the final resume failed (exit {final.returncode}): {final.stderr[-2000:]}")
        rows = _rows(db)
        if sorted(rows) != list(range(n_trials)):
            problems.append(f"{len(rows)} trials (ids {min(rows, default=None)}..{max(rows, default=None)}), expected {n_trials}")
        not_ok = [tid for tid, r in rows.items() if r[2] != "SUCCEEDED"]
        if not_ok:
            problems.append(f"trials not SUCCEEDED: {not_ok[:10]}")
        if len({r[1] for r in rows.values()}) != len(rows):
            problems.append("an arch was evaluated under two trial ids")
        for tid, row in snapshot.items():
            if rows.get(tid) != row:
                problems.append(f"finished trial {tid} changed by the final resume")
        completions: dict[int, int] = {}
        for kind, tid, _, _ in _log(log):
            if kind == "done":
                completions[tid] = completions.get(tid, 0) + 1
        pids = {p for _, _, worker, helper in _log(log) for p in (worker, helper)}
        time.sleep(1.0)
        left = sorted(p for p in pids if _alive(p))
        if left:
            orphans += len(left)
            problems.append(f"after the final run: processes still alive: {left}")
        # A trial whose evaluator completed more than once: only allowed when its earlier
        # completion was never recorded (the driver died between the evaluator's return and the
        # commit); a recorded result is never re-run.
        entries = _log(log)
        rerun_after_commit = sorted({tid for i, (kind, tid, _, _) in enumerate(entries)
                                     if kind == "start" and tid in recorded_at and i >= recorded_at[tid]})
        if rerun_after_commit:
            problems.append(f"trials re-run after their result was recorded: {rerun_after_commit}")
        lost_in_window = sum(c - 1 for c in completions.values() if c > 1)
        return {
            "ok": not problems,
            "problems": problems,
            "kills": kills,
            "trials": len(rows),
            "succeeded": sum(1 for r in rows.values() if r[2] == "SUCCEEDED"),
            "finished_before_last_kill": len(snapshot),
            "evaluator_completions": sum(completions.values()),
            "completed_but_unrecorded": lost_in_window,
            "evaluator_starts": sum(1 for k, *_ in _log(log) if k == "start"),
            "processes_checked": len(pids),
            "orphans": orphans,
            "seconds": time.monotonic() - t0,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    r = soak(args.trials, args.kills, args.seed)
    print(f"soak: {r['kills']} SIGKILLs of the driver, then a final resume ({r['seconds']:.0f} s)")
    print(f"  trials: {r['trials']} (succeeded {r['succeeded']}; {r['finished_before_last_kill']} finished before the last kill, none changed)")
    print(f"  evaluator runs started: {r['evaluator_starts']}, completed: {r['evaluator_completions']} "
          f"(completed but unrecorded because the driver died before the commit: {r['completed_but_unrecorded']})")
    print(f"  worker and helper processes checked: {r['processes_checked']}, orphans: {r['orphans']}")
    print("  result: " + ("OK" if r["ok"] else "FAILED\n    " + "\n    ".join(r["problems"])))
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    main()
