"""The soak test of issue 10 (slow; run by ``benchmarks/soak_kill.py``, recorded in docs/experiments.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.mark.slow
def test_twenty_sigkills_then_resume_loses_nothing_and_leaves_no_process():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "soak_kill.py"
    spec = importlib.util.spec_from_file_location("soak_kill", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.soak(n_trials=200, n_kills=20, seed=0)
    assert result["ok"], result["problems"]
    assert result["trials"] == result["succeeded"] == 200 and result["orphans"] == 0
