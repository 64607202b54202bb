"""NAS-Bench-201 (Dong & Yang 2020): the cell search space, arch strings and the tabular
benchmark of its 15,625 architectures.

Everything here except :class:`NasBench201Space` is torch-free: strategy benchmarks use
:func:`nasbench201_space` (a plain :class:`~nasforge.space.Space`) with
:class:`NasBench201Table` and never import torch.

The cell is a DAG of 4 nodes; node ``j`` sums the outputs of ``op_j_i(node_i)`` for every
``i < j`` and node 3 is the output, so there are 6 edges, each one of :data:`OPS`. Arch dicts
map the labels ``op_1_0, op_2_0, op_2_1, op_3_0, op_3_1, op_3_2`` to op names; the standard
string writes the same as ``|op_1_0~0|+|op_2_0~0|op_2_1~1|+|op_3_0~0|op_3_1~1|op_3_2~2|``.

Example::

    >>> arch = arch_from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    >>> arch["op_2_1"]
    'avg_pool_3x3'
    >>> arch_to_string(arch)
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from nasforge._lazy import lazy_attributes
from nasforge.errors import InvalidArchError
from nasforge.evaluate.base import Evaluator
from nasforge.space import Arch, Categorical, Space

if TYPE_CHECKING:  # the torch model space is loaded lazily by __getattr__ below
    from nasforge.benchmarks._nasbench201_model import NasBench201Space

__all__ = [
    "DATASETS",
    "EDGES",
    "OPS",
    "NasBench201Space",
    "NasBench201Table",
    "PACKAGED_TABLE",
    "arch_from_string",
    "arch_to_string",
    "default_table_path",
    "nasbench201_space",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
LABELS: tuple[str, ...] = tuple(f"op_{j}_{i}" for j, i in EDGES)
DATASETS: dict[str, str] = {
    "cifar10": "cifar10_test",
    "cifar100": "cifar100_test",
    "imagenet16_120": "imagenet16_120_test",
}
CSV_NAME = "nasbench201_cifar_test_acc.csv"
ENV_VAR = "NASFORGE_NB201_CSV"
#: The copy of the table shipped inside the package (gzip of the CSV above; NATS-Bench
#: topology space, MIT licence -- see ``data/README.md`` beside it).
PACKAGED_TABLE: Path = Path(__file__).resolve().parent / "data" / (CSV_NAME + ".gz")
_OP_SET = frozenset(OPS)


def nasbench201_space() -> Space:
    """The NAS-Bench-201 arch space as plain data (no torch): 6 labels × 5 ops = 15,625 archs.

    Its labels and values are those of :class:`NasBench201Space`'s ``space``.
    """
    return Space([Categorical(list(OPS), label=label) for label in LABELS])


def arch_to_string(arch: Mapping[str, Any]) -> str:
    """The standard NAS-Bench-201 string of an arch dict (labels ``op_<node>_<input>``)."""
    parts = []
    for node in (1, 2, 3):
        ops = []
        for i in range(node):
            label = f"op_{node}_{i}"
            if label not in arch:
                raise InvalidArchError(f"arch is missing label {label!r}; NAS-Bench-201 archs need {list(LABELS)}")
            op = arch[label]
            if op not in _OP_SET:
                raise InvalidArchError(f"value {op!r} for label {label!r} is not a NAS-Bench-201 op; valid: {list(OPS)}")
            ops.append(f"{op}~{i}")
        parts.append("|" + "|".join(ops) + "|")
    extra = [k for k in arch if k not in LABELS]
    if extra:
        raise InvalidArchError(f"arch has unknown label(s) {extra}; NAS-Bench-201 labels are {list(LABELS)}")
    return "+".join(parts)


def arch_from_string(s: str) -> Arch:
    """The arch dict of a standard NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    if not isinstance(s, str):
        raise TypeError(f"arch_from_string takes a str, got {type(s).__name__}")
    nodes = s.strip().split("+")
    example = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    if len(nodes) != 3:
        raise InvalidArchError(f"a NAS-Bench-201 arch string has 3 '+'-separated nodes, got {s!r}; e.g. {example}")
    arch: Arch = {}
    for node, text in enumerate(nodes, start=1):
        if not (text.startswith("|") and text.endswith("|")):
            raise InvalidArchError(f"node {node} of {s!r} must be written |op~i|...|; e.g. {example}")
        edges = text[1:-1].split("|")
        if len(edges) != node:
            raise InvalidArchError(f"node {node} of {s!r} must have {node} input edge(s), got {len(edges)}")
        for i, edge in enumerate(edges):
            op, sep, src = edge.rpartition("~")
            if not sep or src != str(i):
                raise InvalidArchError(f"edge {edge!r} of node {node} in {s!r} must be 'op~{i}'")
            if op not in _OP_SET:
                raise InvalidArchError(f"op {op!r} in {s!r} is not a NAS-Bench-201 op; valid: {list(OPS)}")
            arch[f"op_{node}_{i}"] = op
    return {label: arch[label] for label in LABELS}


def default_table_path() -> Path:
    """Where :class:`NasBench201Table` looks when no path is given.

    ``$NASFORGE_NB201_CSV`` if set, else the copy shipped with the package
    (:data:`PACKAGED_TABLE`, a gzipped CSV), else ``../shared/data/nasbench201_cifar_test_acc.csv``
    beside the repository or the working directory (a source tree whose package data was removed).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return next((p for p in _candidates() if p.is_file()), PACKAGED_TABLE)


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    # src/nasforge/benchmarks/nasbench201.py -> parents[3] is the repository root
    out = [PACKAGED_TABLE, here.parents[3].parent / "shared" / "data" / CSV_NAME]
    cwd = Path.cwd()
    for base in (cwd, *cwd.parents[:2]):
        out.append(base.parent / "shared" / "data" / CSV_NAME)
    return out


def _locate(path: str | os.PathLike | None) -> Path:
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 table not found at {str(p)!r}")
        return p
    looked = []
    env = os.environ.get(ENV_VAR)
    if env:
        if Path(env).is_file():
            return Path(env)
        looked.append(f"${ENV_VAR}={env}")
    for p in _candidates():
        if p.is_file():
            return p
        looked.append(str(p))
    raise FileNotFoundError(
        f"NAS-Bench-201 table {CSV_NAME} not found; looked at: {', '.join(dict.fromkeys(looked))}. "
        f"Pass NasBench201Table(path=...) or set ${ENV_VAR}."
    )


def _open_text(path: Path) -> TextIO:
    """Open a CSV, transparently decompressing a gzip file (by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


class NasBench201Table(Evaluator):
    """The NAS-Bench-201 results table; also a tabular evaluator that never builds a network.

    Reads a CSV (plain or gzipped) with an ``arch`` column (the standard string) and one
    test-accuracy column per dataset (``cifar10_test``, ``cifar100_test``, ``imagenet16_120_test``).
    With no ``path`` it reads ``$NASFORGE_NB201_CSV`` if set, else the copy shipped with the
    package (all 15,625 archs from NATS-Bench's topology space; :data:`PACKAGED_TABLE`).
    ``dataset`` picks the column that :meth:`lookup` and :meth:`evaluate` use.

    As an evaluator (``uses_model = False``) it returns ``{"test_acc": accuracy}`` for the
    arch, so it plugs into an experiment directly::

        Experiment(NasBench201Space(), strategy, NasBench201Table(dataset="cifar100"), executor="inline")

    Example::

        table = NasBench201Table(dataset="cifar10")
        table.lookup({"op_1_0": "nor_conv_3x3", ...})   # -> 93.66
        arch, acc = table.best()
    """

    uses_model = False
    metric = "test_acc"
    mode = "max"

    def __init__(self, path: str | os.PathLike | None = None, dataset: str = "cifar10"):
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(repr(d) for d in DATASETS)}; got {dataset!r}")
        self.path = _locate(path)
        self.dataset = dataset
        strings: list[str] = []
        columns: dict[str, list[float]] = {c: [] for c in DATASETS.values()}
        with _open_text(self.path) as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            missing = [c for c in ("arch", DATASETS[dataset]) if c not in fields]
            if missing:
                raise ValueError(f"{self.path}: missing column(s) {missing}; found {fields}")
            present = [c for c in DATASETS.values() if c in fields]
            for row in reader:
                strings.append(row["arch"])
                for c in present:
                    columns[c].append(float(row[c]))
        self._strings = strings
        # arch_from_string gives the labels in LABELS' order, as _row reads them
        self._index = {tuple(arch_from_string(s).values()): i for i, s in enumerate(strings)}
        self._acc = {d: np.asarray(columns[c], dtype=np.float64) for d, c in DATASETS.items() if columns[c]}
        self.accuracies = self._acc[dataset]

    # -- look-ups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._strings)

    def _row(self, arch: Mapping[str, Any]) -> int:
        try:
            return self._index[tuple(arch[label] for label in LABELS)]
        except KeyError:
            pass
        except TypeError:
            raise InvalidArchError(f"an arch must be a dict of label -> op, got {type(arch).__name__}") from None
        # (arch_to_string raises a precise InvalidArchError for a malformed arch)
        raise InvalidArchError(f"arch {arch_to_string(arch)} is not in the table {self.path}")

    def lookup(self, arch: Mapping[str, Any], dataset: str | None = None) -> float:
        """Test accuracy (%) of ``arch`` (a dict with labels ``op_<node>_<input>``)."""
        return float(self._column(dataset)[self._row(arch)])

    def lookup_string(self, s: str, dataset: str | None = None) -> float:
        """Test accuracy (%) of an arch given as its standard string."""
        return self.lookup(arch_from_string(s), dataset)

    def _column(self, dataset: str | None) -> np.ndarray:
        if dataset is None:
            return self.accuracies
        if dataset not in self._acc:
            raise ValueError(f"dataset must be one of {', '.join(repr(d) for d in self._acc)}; got {dataset!r}")
        return self._acc[dataset]

    def best(self, dataset: str | None = None) -> tuple[Arch, float]:
        """The best arch of the table and its accuracy."""
        col = self._column(dataset)
        i = int(np.argmax(col))
        return arch_from_string(self._strings[i]), float(col[i])

    def optimum(self, dataset: str | None = None) -> float:
        return float(self._column(dataset).max())

    def items(self, dataset: str | None = None) -> Iterator[tuple[Arch, float]]:
        """Every ``(arch, accuracy)`` row."""
        col = self._column(dataset)
        for s, acc in zip(self._strings, col):
            yield arch_from_string(s), float(acc)

    @property
    def arch_strings(self) -> list[str]:
        return list(self._strings)

    def space(self) -> Space:
        """The torch-free arch space of the table (same as :func:`nasbench201_space`)."""
        return nasbench201_space()

    def expected_best_of_random(self, n: int, dataset: str | None = None) -> float:
        """E[max accuracy of ``n`` archs drawn uniformly with replacement] — random search's
        analytic expectation: ``Σ_k v_(k) [(k/N)^n - ((k-1)/N)^n]`` over the sorted values."""
        v = np.sort(self._column(dataset))
        big_n = len(v)
        k = np.arange(1, big_n + 1, dtype=np.float64)
        w = (k / big_n) ** n - ((k - 1) / big_n) ** n
        return float((v * w).sum())

    # -- evaluator --------------------------------------------------------------------------------
    def evaluate(self, model_or_arch: Any, ctx: Any = None) -> dict[str, float]:
        arch = model_or_arch if isinstance(model_or_arch, Mapping) else getattr(ctx, "arch", None)
        if arch is None:
            raise TypeError("NasBench201Table.evaluate takes the arch dict (uses_model is False)")
        return {"test_acc": self.lookup(arch)}

    def __call__(self, arch: Mapping[str, Any]) -> float:
        return self.lookup(arch)

    def __repr__(self) -> str:
        return f"NasBench201Table({str(self.path)!r}, dataset={self.dataset!r})"


# the torch model space, loaded on first use
__getattr__ = lazy_attributes(__name__, {"NasBench201Space": "nasforge.benchmarks._nasbench201_model"})
