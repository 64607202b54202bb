"""The multi-objective MNIST-1D example in its reduced mode: a real front and a real plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mnist1d")


def test_mnist1d_pareto_quick(tmp_path):
    png, js = tmp_path / "front.png", tmp_path / "front.json"
    cmd = [sys.executable, str(ROOT / "examples" / "mnist1d_pareto.py"), "--quick", "--trials", "8",
           "--max-params", "60000", "--store", str(tmp_path / "p.db"), "--plot", str(png), "--json", str(js)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(js.read_text())
    assert out["trials"] == 8 and out["front"]
    front = out["front"]
    # a front: sorted by accuracy (best first), parameters strictly decreasing along it
    accs = [f["val_acc"] for f in front]
    params = [f["params"] for f in front]
    assert accs == sorted(accs, reverse=True)
    assert all(a > b for a, b in zip(params, params[1:])) or len(front) == 1
    assert all(p <= 60000 for p in params)
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    # the CLI shows the same front
    show = subprocess.run([sys.executable, "-m", "nasforge.cli", "show", str(tmp_path / "p.db")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert show.returncode == 0, show.stderr
    assert f"Pareto front ({len(front)} non-dominated trial(s)" in show.stdout
