"""Nothing outside ``tests/`` imports from ``tests/``: examples, benchmarks and the package use
only the installed package (the seed model lives in ``nasforge.benchmarks.seed_model``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# an import statement of the ``tests`` package, also inside scripts embedded as strings
TESTS_IMPORT = re.compile(r"^[ \t]*(from[ \t]+tests(\.[\w.]+)?[ \t]+import\b|import[ \t]+tests(\.|\b))", re.M)


def imports_of_tests(text: str) -> list[str]:
    return [m.group(0).strip() for m in TESTS_IMPORT.finditer(text)]


@pytest.mark.parametrize(
    ("line", "hit"),
    [
        ("from tests.seed_model import Net", True),
        ("    from tests.seed_model import Net  # noqa", True),
        ("from tests import seed_model", True),
        ("import tests.seed_model as sm", True),
        ("import tests", True),
        ("\timport tests, os", True),
        ("from testsuite import x", False),
        ("import tests_helpers", False),
        ("# the seed model used to be in tests/seed_model.py", False),
        ("x = 'see tests/test_nn.py'", False),
        ("from nasforge.benchmarks.seed_model import Net", False),
    ],
)
def test_detector(line: str, hit: bool) -> None:
    assert bool(imports_of_tests(f"import os\n{line}\n")) is hit


@pytest.mark.parametrize("folder", ["examples", "benchmarks", "src"])
def test_nothing_outside_tests_imports_tests(folder: str) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    found = {
        str(f.relative_to(ROOT)): hits
        for f in files
        if (hits := imports_of_tests(f.read_text(encoding="utf-8")))
    }
    assert not found, f"these files import from tests/ (use the package instead): {found}"


def test_seed_model_is_in_the_package() -> None:
    from nasforge.benchmarks.seed_model import Net

    space = Net().space
    assert sorted(space) == ["conv1", "conv2", "skipconnect"]
    assert space.size == 8


def test_type_checker_runs_in_ci_with_teeth() -> None:
    """``scripts/test.sh`` (what ``.ci/run`` calls) runs mypy on the package; the config checks
    everything: no global ``ignore_errors`` / ``ignore_missing_imports`` / disabled error codes,
    missing imports are ignored only per named third-party module."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mypy = config["tool"]["mypy"]
    assert mypy["files"] == ["src/nasforge"]
    assert mypy["python_version"] == "3.10"
    for toothless in ("ignore_errors", "ignore_missing_imports", "disable_error_code", "follow_imports", "exclude"):
        assert toothless not in mypy, f"[tool.mypy] must not set {toothless} globally"
    for override in mypy.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert set(override) == {"module", "ignore_missing_imports"}, override
        assert not any(m.startswith("nasforge") for m in modules), f"our own modules are checked: {modules}"
    assert any(dep.startswith("mypy") for dep in config["project"]["optional-dependencies"]["dev"])
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert re.search(r"^\.venv/bin/python -m mypy\b", script, re.M), "scripts/test.sh must run mypy"
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "module, names",
    [
        ("nasforge", ["Experiment"]),
        ("nasforge.evaluate", ["Classification", "Regression", "Supervised", "ZeroCostEvaluator"]),
        ("nasforge.execution", ["RayExecutor"]),
        ("nasforge.benchmarks", ["NasBench201Space"]),
        ("nasforge.benchmarks.nasbench201", ["NasBench201Space"]),
        ("nasforge.dashboard", ["create_app", "serve", "write_report"]),
    ],
)
def test_lazy_attributes_resolve_and_unknown_names_are_refused(module: str, names: list[str]) -> None:
    import importlib

    mod = importlib.import_module(module)
    for name in names:
        value = getattr(mod, name)
        assert getattr(value, "__name__", None) == name
        assert name in mod.__all__ or module == "nasforge.benchmarks.nasbench201"
    with pytest.raises(AttributeError, match=f"module '{re.escape(module)}' has no attribute 'nope'"):
        _ = mod.nope
