"""The regression and DataLoader examples end to end, in their reduced (--quick) mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sklearn")


def run_example(name, out):
    cmd = [sys.executable, str(ROOT / "examples" / name), "--quick", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads((out / "results.json").read_text())


def test_regression_diabetes_example(tmp_path):
    stdout, results = run_example("regression_diabetes.py", tmp_path / "diabetes")
    assert "leaderboard (validation MSE" in stdout and "least squares (baseline)" in stdout
    assert "TEST R2 of the found architecture" in stdout and " ± " in stdout
    assert results["candidates_evaluated"] == 3 and results["seeds"] == 2
    assert results["test"]["test_mse"] > 0 and "test_r2" in results["test_std"]
    assert 0 < results["least_squares"]["test_r2"] < 1
    from nasforge import Experiment

    res = Experiment.load(tmp_path / "diabetes" / "search.db")
    assert res.metric == "val_mse" and res.mode == "min" and len(res.test_results()[0].runs) == 2
    # re-running the finished script reuses the stored test runs instead of adding rows
    run_example("regression_diabetes.py", tmp_path / "diabetes")
    assert len(Experiment.load(tmp_path / "diabetes" / "search.db").tests()) == 2


def test_dataloader_digits_example(tmp_path):
    stdout, results = run_example("dataloader_digits.py", tmp_path / "digits")
    assert "TEST ACCURACY of the found architecture" in stdout
    assert results["candidates_evaluated"] == 2 and 0 < results["test"]["test_acc"] <= 1
    assert set(results["arch"]) == {"channels", "kernel", "depth", "pool"}
