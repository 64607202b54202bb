"""The main job end to end, shrunk to seconds: search, leaderboard, retrain, test, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mnist1d")


def test_main_job_smoke(tmp_path):
    out = tmp_path / "main"
    cmd = [sys.executable, str(ROOT / "examples" / "main_job.py"), "--out", str(out), "--trials", "3",
           "--search-time", "120", "--proxy-epochs", "1", "--final-epochs", "1", "--top-k", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TEST ACCURACY of the found architecture" in done.stdout
    assert "leaderboard" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["candidates_evaluated"] == 3 and 0.0 < results["test_acc"] <= 1.0
    for name in ("best_arch.json", "best_weights.pt", "history.png", "search.db"):
        assert (out / name).stat().st_size > 0, name
    for name in ("report.html", "mnist1d-best_so_far.png", "mnist1d-metric_vs_params.png", "mnist1d-curves.png"):
        assert (out / "report" / name).stat().st_size > 0, name
    import torch

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from mnist1d_space import Mnist1dSpace
    finally:
        sys.path.remove(str(ROOT / "examples"))
    net = Mnist1dSpace().freeze(json.loads((out / "best_arch.json").read_text()))
    net.load_state_dict(torch.load(out / "best_weights.pt"))
    assert net(torch.zeros(2, 1, 40)).shape == (2, 10)
