"""The NAS-Bench-101 cell space (Ying et al., ICML 2019).

A cell is a DAG of at most 7 vertices: the input, up to 5 intermediate vertices each one of
``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``, and the output; the adjacency matrix is
upper-triangular. Labels: ``op_<v>`` for v = 1 … 5 and ``edge_<i>_<j>`` (0 or 1) for 0 ≤ i < j ≤ 6.
The benchmark's validity rule: after removing vertices that are not on a path from the input to
the output, the input must reach the output and at most 9 edges may remain
(:func:`is_valid`, :func:`prune`). Freezing an invalid arch raises an
:class:`~nasforge.errors.InvalidArchError` saying why, so a multi-trial search records it as a
failed trial; :meth:`NasBench101Space.sample_valid` draws valid archs only.

The network is the benchmark's: a 3×3 conv stem, ``num_stacks`` stacks of ``num_modules_per_stack``
cells with 2×2 max pooling and doubled width between stacks, global pooling, a linear layer; inside
a cell the vertex widths and projections follow the benchmark's rules (the vertices feeding the
output split its width and are concatenated; the input reaches other vertices through 1×1
projections; wider tensors are truncated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.errors import InvalidArchError
from nasforge.hub._common import PresetMixin, check_positive_int

__all__ = ["NasBench101Space", "NB101_OPS", "MAX_EDGES", "MAX_VERTICES", "is_valid", "prune", "arch_to_spec",
           "spec_to_arch"]

NB101_OPS: tuple[str, ...] = ops.op_names("nasbench101")
MAX_VERTICES = 7
MAX_EDGES = 9
_N = MAX_VERTICES
EDGE_LABELS: tuple[str, ...] = tuple(f"edge_{i}_{j}" for i in range(_N) for j in range(i + 1, _N))
OP_LABELS: tuple[str, ...] = tuple(f"op_{v}" for v in range(1, _N - 1))


def arch_to_spec(arch: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """The 7×7 adjacency matrix and op list (``input`` … ``output``) of an arch (before pruning)."""
    matrix = np.zeros((_N, _N), dtype=int)
    matrix[np.triu_indices(_N, 1)] = [int(arch[label]) for label in EDGE_LABELS]  # row-major
    return matrix, ["input"] + [arch[label] for label in OP_LABELS] + ["output"]


def spec_to_arch(matrix: Sequence[Sequence[int]], op_list: Sequence[str]) -> dict[str, Any]:
    """The arch of a NAS-Bench-101 spec; smaller graphs are padded with unconnected vertices
    (placed before the output, as ``conv3x3-bn-relu``)."""
    m = np.asarray(matrix, dtype=int)
    n = len(op_list)
    if m.shape != (n, n) or n < 2 or n > _N or op_list[0] != "input" or op_list[-1] != "output":
        raise InvalidArchError(f"a NAS-Bench-101 spec is an n×n matrix (2 ≤ n ≤ 7) with ops ['input', …, 'output']; "
                               f"got shape {m.shape} and {list(op_list)}")
    if np.any(np.tril(m) != 0):
        raise InvalidArchError("a NAS-Bench-101 adjacency matrix must be strictly upper-triangular")
    full = np.zeros((_N, _N), dtype=int)
    idx = list(range(n - 1)) + [_N - 1]  # old vertex -> new vertex
    full[np.ix_(idx, idx)] = m
    ops_full = list(op_list[1:-1]) + ["conv3x3-bn-relu"] * (_N - n)
    arch: dict[str, Any] = dict(zip(OP_LABELS, ops_full))
    arch.update({f"edge_{i}_{j}": int(full[i, j]) for i in range(_N) for j in range(i + 1, _N)})
    return arch


def prune(matrix: np.ndarray, op_list: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Remove the vertices not on an input→output path (NAS-Bench-101's ``ModelSpec`` rule);
    None when the output is unreachable from the input."""
    n = len(matrix)
    fwd = {0}
    for j in range(1, n):
        if any(matrix[i, j] and i in fwd for i in range(j)):
            fwd.add(j)
    bwd = {n - 1}
    for i in range(n - 2, -1, -1):
        if any(matrix[i, j] and j in bwd for j in range(i + 1, n)):
            bwd.add(i)
    if n - 1 not in fwd:
        return None
    keep = sorted(fwd & bwd)
    return matrix[np.ix_(keep, keep)], [op_list[k] for k in keep]


def is_valid(arch: Mapping[str, Any]) -> bool:
    """NAS-Bench-101's validity rule: the input reaches the output and the pruned cell has ≤ 9 edges."""
    return not isinstance(_pruned_or_why(arch), str)


def _pruned_or_why(arch: Mapping[str, Any]) -> tuple[np.ndarray, list[str]] | str:
    """The pruned cell of ``arch`` (matrix, ops), or why NAS-Bench-101 rejects the arch."""
    pruned = prune(*arch_to_spec(arch))
    if pruned is None:
        return "the output cannot be reached from the input"
    edges = int(pruned[0].sum())
    if edges > MAX_EDGES:
        return f"the pruned cell has {edges} edges; NAS-Bench-101 allows at most {MAX_EDGES}"
    return pruned


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """NAS-Bench-101's vertex widths: the output's width is split over the vertices feeding it."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    in_degree = int(matrix[1:, n - 1].sum())
    interior, correction = out_channels // in_degree, out_channels % in_degree
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            channels[v] = interior + (1 if correction else 0)
            correction = max(correction - 1, 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v, dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


class NasBench101Cell(nn.ModelSpace):
    """One cell; built from concrete ops and edges (a value choice each while searching: the cell is
    then rebuilt with the chosen values when the space is frozen)."""

    def __init__(self, in_channels: int, out_channels: int, op_values: Sequence[Any], edge_values: Sequence[Any]):
        super().__init__()
        if any(isinstance(v, nn.ValueExpr) for v in list(op_values) + list(edge_values)):
            arch = _FALLBACK  # the space instance itself runs a fixed valid cell
        else:
            arch = dict(zip(OP_LABELS, op_values)) | dict(zip(EDGE_LABELS, edge_values))
        spec = _pruned_or_why(arch)
        if isinstance(spec, str):
            raise InvalidArchError(f"invalid NAS-Bench-101 cell: {spec} (arch {arch})")
        matrix, op_list = spec
        self.matrix = matrix.tolist()
        self.n = len(matrix)
        self.channels = vertex_channels(in_channels, out_channels, matrix)
        self.ops = torch.nn.ModuleList()
        self.proj = torch.nn.ModuleDict()
        for v in range(1, self.n - 1):
            c = self.channels[v]
            self.ops.append(ops.build_op(op_list[v], c, c))
            if matrix[0, v]:
                self.proj[str(v)] = ops.ConvBNReLU(in_channels, c, 1)
        if matrix[0, self.n - 1]:
            self.proj[str(self.n - 1)] = ops.ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x):
        m, n = self.matrix, self.n
        tensors = [x]
        concat = []
        for v in range(1, n - 1):
            c = self.channels[v]
            inputs = [tensors[s][:, :c] for s in range(1, v) if m[s][v]]
            if m[0][v]:
                inputs.append(self.proj[str(v)](x))
            out = self.ops[v - 1](sum(inputs[1:], inputs[0]))
            tensors.append(out)
            if m[v][n - 1]:
                concat.append(out)
        if not concat:
            return self.proj[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, 1)
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


# input -> conv3x3 -> output and input -> output: a valid cell for the space instance's own forward.
_FALLBACK: dict[str, Any] = {label: NB101_OPS[0] for label in OP_LABELS} | {label: 0 for label in EDGE_LABELS}
_FALLBACK.update({"edge_0_1": 1, "edge_1_6": 1, "edge_0_6": 1})


class NasBench101Space(PresetMixin, nn.ModelSpace):
    """The NAS-Bench-101 network with one searched cell shared by all cells.

    The benchmark's setting: ``stem_channels=128, num_stacks=3, num_modules_per_stack=3`` on
    32×32 CIFAR-10; the defaults are CPU-sized. The space has 3^5 × 2^21 points, of which the
    valid ones (:func:`is_valid`) are NAS-Bench-101's cells (423,624 after isomorphism).
    """

    def __init__(self, stem_channels: int = 16, num_stacks: int = 3, num_modules_per_stack: int = 1,
                 num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        check_positive_int("NasBench101Space", stem_channels=stem_channels, num_stacks=num_stacks,
                           num_modules_per_stack=num_modules_per_stack, num_classes=num_classes, in_channels=in_channels)
        op_values = [nn.ValueChoice(list(NB101_OPS), label=label) for label in OP_LABELS]
        edge_values = [nn.ValueChoice([0, 1], label=label) for label in EDGE_LABELS]
        self.stem = ops.ConvBNReLU(in_channels, stem_channels, 3)
        layers: list[torch.nn.Module] = []
        C_in = C = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(torch.nn.MaxPool2d(2, 2))
                C *= 2
            for _ in range(num_modules_per_stack):
                layers.append(NasBench101Cell(C_in, C, op_values, edge_values))
                C_in = C
        self.cells = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Linear(C, num_classes)

    def forward(self, x):
        x = self.cells(self.stem(x))
        return self.classifier(x.mean((2, 3)))

    is_valid = staticmethod(is_valid)

    def sample_valid(self, seed_or_rng: Any = None, max_tries: int = 10_000) -> dict[str, Any]:
        """A uniformly random valid arch (rejection sampling over ``self.space``)."""
        from nasforge.space import as_rng

        rng = as_rng(seed_or_rng)
        for _ in range(max_tries):
            arch = self.space.sample(rng)
            if is_valid(arch):
                return arch
        raise RuntimeError(f"no valid NAS-Bench-101 arch in {max_tries} samples")
