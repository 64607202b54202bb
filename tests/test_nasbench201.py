"""NAS-Bench-201: arch strings, the table / tabular evaluator, the model space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge.benchmarks.nasbench201 import (
    OPS,
    PACKAGED_TABLE,
    NasBench201Table,
    _candidates,
    arch_from_string,
    arch_to_string,
    nasbench201_space,
)
from nasforge.errors import InvalidArchError
from nasforge.evaluate.base import Evaluator
from nasforge.strategy import RegularizedEvolution
from nasforge.strategy.testing import run_ask_tell

# the copy shipped inside the package: present in a fresh clone, with no ../shared beside it
CSV = PACKAGED_TABLE
# the original CSV in ../shared, where this checkout has one (only to check the packaged copy)
SHARED_CSV = next((p for p in _candidates()[1:] if p.is_file()), Path("../shared/data/nasbench201_cifar_test_acc.csv"))
needs_csv = pytest.mark.skipif(not CSV.is_file(), reason=f"NAS-Bench-201 table not found at {CSV}")

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table():
    if not CSV.is_file():
        pytest.skip(f"NAS-Bench-201 table not found at {CSV}")
    return NasBench201Table(CSV, "cifar10")


def test_arch_string_example():
    arch = arch_from_string(EXAMPLE)
    assert arch == {
        "op_1_0": "nor_conv_3x3",
        "op_2_0": "nor_conv_3x3",
        "op_2_1": "avg_pool_3x3",
        "op_3_0": "skip_connect",
        "op_3_1": "nor_conv_3x3",
        "op_3_2": "skip_connect",
    }
    assert arch_to_string(arch) == EXAMPLE
    assert nasbench201_space().validate(arch) == arch


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",
        "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "nor_conv_3x3~0+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    ],
)
def test_bad_arch_strings_raise(bad):
    with pytest.raises(InvalidArchError):
        arch_from_string(bad)


def test_arch_to_string_names_bad_value():
    arch = arch_from_string(EXAMPLE)
    arch["op_2_1"] = "max_pool"
    with pytest.raises(InvalidArchError, match="op_2_1"):
        arch_to_string(arch)


def test_space_is_torch_free_and_complete():
    space = nasbench201_space()
    assert space.size == 15625 and space.labels == ["op_1_0", "op_2_0", "op_2_1", "op_3_0", "op_3_1", "op_3_2"]
    assert all(space[label].values == list(OPS) for label in space)


@needs_csv
def test_round_trip_all_rows(table):
    strings = table.arch_strings
    assert len(strings) == 15625
    archs = [arch_from_string(s) for s in strings]
    assert [arch_to_string(a) for a in archs] == strings
    assert len({tuple(a.values()) for a in archs}) == 15625  # the table covers the space once


@needs_csv
def test_table_lookup_and_evaluator(table):
    assert isinstance(table, Evaluator) and table.uses_model is False and table.mode == "max"
    assert table.lookup_string(EXAMPLE) == pytest.approx(93.66)
    assert table.lookup(arch_from_string(EXAMPLE), "cifar100") == pytest.approx(70.2933)
    assert table.evaluate(arch_from_string(EXAMPLE), None) == {"test_acc": pytest.approx(93.66)}
    arch, acc = table.best()
    assert acc == pytest.approx(94.3733) and table.lookup(arch) == acc
    assert NasBench201Table(CSV, "cifar100").optimum() == pytest.approx(73.5133)
    assert NasBench201Table(CSV, "imagenet16_120").optimum() == pytest.approx(47.3111)
    with pytest.raises(InvalidArchError, match="op_3_2"):
        table.lookup({k: v for k, v in arch.items() if k != "op_3_2"})


@needs_csv
def test_table_is_picklable(table):
    import cloudpickle

    clone = cloudpickle.loads(cloudpickle.dumps(table))
    assert clone.lookup_string(EXAMPLE) == table.lookup_string(EXAMPLE)


def test_table_missing_path_says_where_it_looked(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        NasBench201Table(tmp_path / "nope.csv")
    monkeypatch.setenv("NASFORGE_NB201_CSV", str(tmp_path / "missing.csv"))
    # the packaged copy exists: the env var is only a first choice
    assert NasBench201Table().path.resolve() == PACKAGED_TABLE.resolve()


def test_table_bad_dataset():
    with pytest.raises(ValueError, match="cifar100"):
        NasBench201Table(CSV, "svhn")


def test_table_from_any_path(tmp_path):
    f = tmp_path / "mini.csv"
    f.write_text(f"arch,cifar10_test,cifar100_test,imagenet16_120_test\n{EXAMPLE},90.5,60.0,30.0\n")
    t = NasBench201Table(f)
    assert len(t) == 1 and t.lookup_string(EXAMPLE) == 90.5
    assert t.expected_best_of_random(5) == 90.5


@needs_csv
def test_random_matches_analytic_expectation(table):
    """Random search (with replacement) over 30 seeds ~ E[best of 100 uniform draws] (93.85)."""
    from nasforge.strategy import Random

    bests = [
        max(t.score for t in run_ask_tell(Random(dedup=False), nasbench201_space(), table.lookup, budget=100, seed=s))
        for s in range(30)
    ]
    expected = table.expected_best_of_random(100)
    assert expected == pytest.approx(93.85, abs=0.01)
    assert abs(np.mean(bests) - expected) < 3 * np.std(bests) / np.sqrt(len(bests)) + 0.02


@needs_csv
def test_evolution_beats_random_on_nb201(table):
    bests = [
        max(t.score for t in run_ask_tell(
            RegularizedEvolution(population_size=10, sample_size=3), nasbench201_space(), table.lookup, 100, seed=s))
        for s in range(10)
    ]
    assert np.mean(bests) > table.expected_best_of_random(100) + 0.1


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_space():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    return NasBench201Space(C=16, N=5, num_classes=10)


def test_model_space_labels_match_table_space(model_space):
    assert model_space.space.labels == nasbench201_space().labels
    # the same decisions; the model space's full fingerprint also covers what its candidates are
    assert model_space.space.describe() == nasbench201_space().describe()
    assert model_space.space.fingerprint(candidates=False) == nasbench201_space().fingerprint(candidates=False)


def test_edge_candidates_are_the_table_ops_in_order(model_space):
    from nasforge.benchmarks._nasbench201_model import ReLUConvBN, Zero
    from nasforge.nn import LayerChoice

    edges = [m for m in model_space.modules() if isinstance(m, LayerChoice)]
    assert edges and all(lc.names == list(OPS) for lc in edges)
    for lc in edges:
        assert [type(m) for m in lc.candidates] == [Zero, torch.nn.Identity, ReLUConvBN, ReLUConvBN, torch.nn.AvgPool2d]
        assert lc["nor_conv_1x1"].op[1].kernel_size == (1, 1) and lc["nor_conv_3x3"].op[1].kernel_size == (3, 3)


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_frozen_archs_run_and_sizes(model_space):
    x = torch.randn(2, 3, 32, 32)
    sizes = {}
    for op in ("nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect"):
        net = model_space.freeze({label: op for label in model_space.space.labels})
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        sizes[op] = _params(net)
    assert 1.45e6 < sizes["nor_conv_3x3"] < 1.6e6
    assert sizes["none"] < sizes["nor_conv_3x3"] / 10 and sizes["avg_pool_3x3"] == sizes["none"]
    mixed = model_space.freeze(arch_from_string(EXAMPLE))
    assert sizes["none"] < _params(mixed) < sizes["nor_conv_3x3"]
    assert mixed(x).shape == (2, 10)


def test_model_space_num_classes():
    from nasforge.benchmarks.nasbench201 import NasBench201Space

    ms = NasBench201Space(C=8, N=1, num_classes=100)
    net = ms.freeze(ms.space.sample(0))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    with pytest.raises(ValueError, match="C"):
        NasBench201Space(C=0)


def test_env_var_overrides_packaged_table(tmp_path, monkeypatch):
    f = tmp_path / "mine.csv"
    f.write_text(f"arch,cifar10_test,cifar100_test,imagenet16_120_test\n{EXAMPLE},12.5,6.0,3.0\n")
    monkeypatch.setenv("NASFORGE_NB201_CSV", str(f))
    t = NasBench201Table()
    assert t.path == f and len(t) == 1 and t.lookup_string(EXAMPLE) == 12.5


def test_gzipped_table_from_any_path(tmp_path):
    import gzip

    f = tmp_path / "mini.csv.gz"
    with gzip.open(f, "wt") as g:
        g.write(f"arch,cifar10_test,cifar100_test,imagenet16_120_test\n{EXAMPLE},91.25,60.0,30.0\n")
    assert NasBench201Table(f).lookup_string(EXAMPLE) == 91.25


@pytest.mark.skipif(not SHARED_CSV.is_file(), reason=f"no shared copy at {SHARED_CSV} to compare with")
def test_packaged_table_equals_shared_csv():
    shipped, shared = NasBench201Table(PACKAGED_TABLE), NasBench201Table(SHARED_CSV)
    assert shipped.arch_strings == shared.arch_strings
    for d in ("cifar10", "cifar100", "imagenet16_120"):
        assert np.array_equal(shipped._column(d), shared._column(d))


def test_fresh_clone_without_shared_folder(tmp_path):
    """Copy the package to a folder with no ../shared anywhere above it and use it from a clean
    interpreter with no $NASFORGE_NB201_CSV: only the packaged table can be found."""
    import os
    import shutil
    import subprocess
    import sys

    import nasforge

    clone = tmp_path / "clone"
    shutil.copytree(Path(nasforge.__file__).parent, clone / "src" / "nasforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    tests = clone / "tests"
    tests.mkdir()
    shutil.copy(Path(__file__), tests / "test_nasbench201.py")
    shutil.copy(Path(__file__).parent / "conftest.py", tests / "conftest.py")
    (tests / "__init__.py").write_text("")
    assert not (tmp_path / "shared").exists() and not (clone.parent.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("NASFORGE_NB201_CSV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(clone / "src")
    code = (
        "import nasforge, pathlib; from nasforge.benchmarks.nasbench201 import NasBench201Table as T;"
        f"t = T(); assert pathlib.Path(nasforge.__file__).is_relative_to({str(clone)!r}), nasforge.__file__;"
        "print(t.path, len(t), t.optimum(), t.optimum('cifar100'), t.optimum('imagenet16_120'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    path, n, c10, c100, im = out.stdout.split()
    assert Path(path).is_relative_to(clone / "src" / "nasforge" / "benchmarks" / "data")
    assert int(n) == 15625 and float(c10) == 94.3733 and float(c100) == 73.5133 and float(im) == 47.3111
    # every other test of this file, run in the clone: none may skip for a missing table
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/test_nasbench201.py",
         "-k", "not fresh_clone and not equals_shared", "-m", "not slow"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "SKIPPED" not in out.stdout and " passed" in out.stdout, out.stdout[-3000:]


def test_default_table_path_falls_back_to_shared_data(tmp_path, monkeypatch):
    """Without the packaged copy, the default path is the first table that exists (as the docstring says)."""
    import nasforge.benchmarks.nasbench201 as nb

    monkeypatch.delenv("NASFORGE_NB201_CSV", raising=False)
    monkeypatch.setattr(nb, "PACKAGED_TABLE", tmp_path / "removed.csv.gz")
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    (shared / nb.CSV_NAME).write_text(f"arch,cifar10_test\n{EXAMPLE},12.5\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    found = nb.default_table_path()
    assert found.is_file() and found == NasBench201Table().path
