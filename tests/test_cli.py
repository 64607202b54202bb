"""The nasforge command on a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge import Categorical, Experiment, Space
from nasforge.cli import main
from nasforge.evaluate import FunctionEvaluator
from nasforge.strategy import Random

SPACE = Space([Categorical([1, 2, 3, 4], label="x"), Categorical(["a", "b"], label="y")])


def evaluate(arch, ctx):
    if arch["x"] == 4 and arch["y"] == "a":
        raise RuntimeError("four-a is cursed")
    return {"score": arch["x"] + (0.5 if arch["y"] == "b" else 0), "params": 1000.0 * arch["x"]}


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "cli.db"
    Experiment(SPACE, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False), max_trials=8,
               executor="inline", store=db, name="demo", seed=0).run()
    return db


def test_show_prints_leaderboard_and_counts(store, capsys):
    assert main(["show", str(store), "--failures"]) == 0
    out = capsys.readouterr().out
    assert "experiment 'demo'" in out and "failed 1, succeeded 7  (total 8)" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert lines[header].split() == ["rank", "trial", "score", "params", "duration", "arch"]
    first = lines[header + 2].split()
    assert first[0] == "1" and first[2] == "4.5000" and first[3] == "4.0k"
    assert '{"x":4,"y":"b"}' in lines[header + 2]
    assert "four-a is cursed" in out


def test_export_top_k(store, tmp_path, capsys):
    assert main(["export", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == {"x": 4, "y": "b"}
    out = tmp_path / "top.json"
    assert main(["export", str(store), "--top", "3", "-o", str(out)]) == 0
    top = json.loads(out.read_text())
    assert top[0] == {"x": 4, "y": "b"} and len(top) == 3


def test_errors_are_clear(tmp_path, store, capsys):
    assert main(["show", str(tmp_path / "nope.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["show", str(store), "--name", "other"]) == 2
    assert "no experiment named 'other'" in capsys.readouterr().err and True


def test_run_script_and_help_via_console_script(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(
        "import sys\n"
        "from nasforge import Categorical, Experiment, Space\n"
        "from nasforge.evaluate import FunctionEvaluator\n"
        "from nasforge.strategy import Random\n"
        "def ev(arch, ctx):\n"
        "    return arch['x'] * 1.0\n"
        "if __name__ == '__main__':\n"
        "    exp = Experiment(Space([Categorical([1, 2, 3], label='x')]), Random(dedup=True),\n"
        "                     FunctionEvaluator(ev, uses_model=False), max_trials=3, concurrency=2,\n"
        "                     store=sys.argv[1], name='s')\n"
        "    print('best', exp.run().best.arch)\n"
    )
    exe = Path(sys.executable).parent / "nasforge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from nasforge.cli import main; sys.exit(main())"]
    help_ = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "show" in help_.stdout and "export" in help_.stdout and "run" in help_.stdout
    db = tmp_path / "s.db"
    ran = subprocess.run(cmd + ["run", str(script), str(db)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "best {'x': 3}" in ran.stdout
    shown = subprocess.run(cmd + ["show", str(db)], capture_output=True, text=True, timeout=60)
    assert "succeeded 3" in shown.stdout
