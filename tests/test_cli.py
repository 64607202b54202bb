"""The nasforge command on a real store."""

from __future__ import annotations

import json
import os
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


WIDE = Space([Categorical(list(range(3)), label=f"block_{i}_operation") for i in range(30)])


def wide_eval(arch, ctx):
    if arch["block_0_operation"] == 2 and arch["block_1_operation"] == 2:
        raise RuntimeError("bad \x1b[31mred\x1b[0m block\nsecond line")
    return {"score": float(sum(arch.values()))}


@pytest.fixture
def wide_store(tmp_path):
    db = tmp_path / "wide.db"
    ev = FunctionEvaluator(wide_eval, uses_model=False,
                           test_fn=lambda arch, ctx, retrain: {"test_score": sum(arch.values()) + ctx.seed % 10 / 10})
    exp = Experiment(WIDE, Random(dedup=True), ev, max_trials=40, executor="inline", store=db, name="wide", seed=3)
    exp.run()
    exp.test(top_k=2, seeds=3)
    Experiment(SPACE, Random(dedup=True), FunctionEvaluator(evaluate, uses_model=False), max_trials=3,
               executor="inline", store=db, name="small", seed=0).run()
    return db, exp


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_show_wraps_archs_to_the_width_and_full_shows_them_whole(wide_store, capsys, width):
    db, exp = wide_store
    assert main(["show", str(db), "wide", "--width", str(width), "--full", "--top", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rank"))
    board = lines[header: lines.index("failures:")]
    assert all(len(line) <= width for line in board)
    indent = lines[header].index("arch")
    # the arch of the first entry (beside its row, or under it on a narrow terminal), joined back, is complete
    first = [lines[header + 2][indent:]]
    for line in lines[header + 3:]:
        if not line.strip().startswith(('"', '{')):
            break
        first.append(line.strip())
    assert json.loads("".join(first)) == exp.best()[0].arch
    assert list(json.loads("".join(first))) == list(WIDE)  # in the space's definition order
    assert "…" not in out and "\x1b" not in out
    assert "evaluator: FunctionEvaluator(" in out


def test_show_abbreviates_long_archs_without_full(wide_store, capsys):
    db, _ = wide_store
    assert main(["show", str(db), "--name", "wide", "--width", "70"]) == 0
    out = capsys.readouterr().out
    assert "more lines; --full shows all)" in out and "failed; --failures lists the reasons" in out
    assert main(["show", str(db), "wide", "--width", "0", "--top", "1"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("1 "))
    assert row.endswith("}") and "block_29_operation" in row  # one line, never cut


def test_show_escapes_stored_text_and_lists_tests_with_spread(wide_store, capsys):
    db, exp = wide_store
    assert main(["show", str(db), "wide", "--failures", "--width", "100"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[31mred" in out and "[0m block" in out and "second line" not in out
    tests = exp.test(top_k=2, seeds=3)
    assert f"rank 1, trial {tests[0].trial_id}: test_score {tests[0].metrics['test_score']:.4f} ± " in out
    assert "(3 seeds, retrained on train+val)" in out


def test_show_json_and_names_as_arguments(wide_store, capsys, tmp_path):
    db, exp = wide_store
    assert main(["show", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in data["experiments"]] == ["wide", "small"]
    wide = data["experiments"][0]
    assert wide["leaderboard"][0]["arch"] == exp.best()[0].arch and wide["total"] == 40
    assert len(wide["tests"]) == 2 and len(wide["tests"][0]["runs"]) == 3 and "test_score" in wide["tests"][0]["std"]
    assert wide["failures"] and wide["failures"][0]["error"].startswith("RuntimeError: bad")
    assert main(["show", str(db), "small", "--json"]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)["experiments"]] == ["small"]
    assert main(["export", str(db)]) == 2
    assert "holds several experiments ('wide', 'small'); name one" in capsys.readouterr().err
    assert main(["export", str(db), "small"]) == 0
    assert json.loads(capsys.readouterr().out) == Experiment.load(db, "small").export()
    assert main(["export", str(db), "wide", "--top", "2", "-o", str(tmp_path / "two.json")]) == 0
    assert json.loads((tmp_path / "two.json").read_text()) == [t.arch for t in exp.best(2)]
    assert main(["show", str(db), "wide", "--name", "small"]) == 2
    assert "two experiment names" in capsys.readouterr().err


ECHO = (
    "import json, os, sys\n"
    "print(json.dumps({'argv': sys.argv[1:], 'progress': os.environ.get('NASFORGE_PROGRESS')}))\n"
)


@pytest.mark.parametrize("argv, script_args, progress", [
    (["run", "{s}", "--", "--trials", "3"], ["--trials", "3"], None),
    (["run", "--progress", "{s}", "--", "--trials", "3"], ["--trials", "3"], "1"),
    (["run", "{s}", "--progress", "--", "--trials", "3"], ["--trials", "3"], "1"),
    (["run", "{s}", "--no-progress", "--", "--progress"], ["--progress"], "0"),
    (["run", "{s}", "data.csv", "--epochs", "2"], ["data.csv", "--epochs", "2"], None),
    (["run", "--log-level", "info", "{s}", "-x", "--", "y", "--", "z"], ["-x", "y", "--", "z"], None),
    (["run", "{s}"], [], None),
])
def test_run_takes_options_before_or_after_the_script(tmp_path, capsys, monkeypatch, argv, script_args, progress):
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    monkeypatch.delenv("NASFORGE_PROGRESS", raising=False)
    assert main([a.format(s=script) for a in argv]) == 0
    seen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen == {"argv": script_args, "progress": progress}
    assert "NASFORGE_PROGRESS" not in os.environ  # the script's setting does not outlive it


def test_run_errors(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.py")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "nasforge run SCRIPT [options] -- ARGS" in capsys.readouterr().err


def test_show_uses_the_spaces_canonical_form_when_the_space_can_rebuild_itself(store, capsys, monkeypatch):
    from nasforge import space as space_module

    class Rebuilt:
        def __init__(self, description):
            self.labels = [d["label"] for d in description]

        def canonical(self, arch):  # e.g. 'x' inactive when y == 'b'
            return {k: arch[k] for k in reversed(self.labels) if not (k == "x" and arch["y"] == "b")}

    monkeypatch.setattr(space_module.Space, "from_description", classmethod(lambda cls, d: Rebuilt(d)), raising=False)
    assert main(["show", str(store), "--width", "100"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.rstrip().endswith("}")]
    assert rows[0].endswith('  {"y":"b"}')  # the best, x=4 with y='b': x omitted
    assert any(row.endswith('{"y":"a","x":3}') for row in rows)  # the space's order, not the stored one
