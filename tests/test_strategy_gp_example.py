"""The example third-party strategy (examples/gp_bo_strategy.py, GP-based BO through the surrogate
protocol) passes the strategy suite shipped in nasforge.strategy.testing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from nasforge.strategy import Surrogate
from nasforge.strategy.testing import StrategyConformance

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gp_bo_strategy.py"
_spec = importlib.util.spec_from_file_location("gp_bo_strategy", EXAMPLE)
gp_bo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gp_bo)


class TestGPBayesOptConformance(StrategyConformance):
    optimum_budget = (60, (0, 1), 2)  # random search: ~10 % per seed within 60 trials

    def make_strategy(self):
        return gp_bo.GPBayesOpt()


def test_gaussian_process_follows_the_protocol_and_interpolates():
    gp = gp_bo.GaussianProcess()
    assert isinstance(gp, Surrogate)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(30, 8)).astype(float)
    y = X @ rng.normal(size=8)
    gp.fit(X, y)
    mean, std = gp.predict(X)
    assert mean.shape == std.shape == (30,)
    assert np.allclose(mean, y, atol=0.05 * y.std()) and np.all(std < 0.1 * y.std())  # near the data: sure
    far_mean, far_std = gp.predict(X[:1] + 10.0)
    assert far_std[0] > 0.9 * y.std()  # far from the data: the prior's uncertainty


def test_example_runs():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--budget", "40"], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    assert out.startswith("best of 40 trials:")
