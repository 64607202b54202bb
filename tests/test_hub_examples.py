"""The hub examples run in their reduced mode (``--quick``: tiny sizes, one epoch or a few trials)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["hub_darts", "hub_enas", "hub_rnn", "hub_proxyless", "hub_mobilenetv3", "hub_shufflenet", "hub_nasbench101",
         "hub_autoactivation"]


def _load(name: str):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_hub_space_has_an_example():
    from nasforge import hub

    text = " ".join((EXAMPLES / f"{n}.py").read_text() for n in NAMES)
    for cls in hub.SPACES:
        assert cls.__name__ in text


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_in_quick_mode(name, capsys):
    result = _load(name).main(["--quick"])
    out = capsys.readouterr().out
    assert result["arch"], out
    assert "found" in out or "best" in out
    if "test_acc" in result:
        assert 0.0 <= result["test_acc"] <= 1.0
