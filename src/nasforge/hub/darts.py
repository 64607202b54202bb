"""The DARTS cell search space (Liu, Simonyan & Yang, ICLR 2019) and DARTS genotypes.

A CIFAR network of ``layers`` cells (reduction cells at 1/3 and 2/3 of the depth). Every
normal cell shares one arch and every reduction cell another; each cell has ``num_nodes``
nodes, and node ``i`` (numbered from 2; 0 and 1 are the outputs of the two previous cells)
sums two ops, each reading one earlier state. Labels::

    normal.op_<i>_<j>      the op of the j-th input of node i (j = 0, 1): an op name
    normal.input_<i>_<j>   the state it reads: 0 … i-1
    reduce.op_<i>_<j> / reduce.input_<i>_<j>

A DARTS genotype lists, per node, its two ``(op, input)`` pairs; :func:`genotype_to_arch` and
:func:`arch_to_genotype` convert (``normal[2*(i-2)+j] == (arch["normal.op_i_j"],
arch["normal.input_i_j"])``). The published cells are in :mod:`nasforge.hub.archs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.errors import InvalidArchError
from nasforge.hub._common import MISSING, PresetMixin, check_positive_int, fixed_value

__all__ = ["DARTS_OPS", "DartsSpace", "Genotype", "arch_to_genotype", "genotype_to_arch"]

#: DARTS' eight candidate ops, in the paper's order.
DARTS_OPS: tuple[str, ...] = ops.op_names("darts")
MERGE_OPS = ("all", "loose_end")


class Genotype(NamedTuple):
    """A DARTS genotype: per node two ``(op, input)`` pairs for the normal and reduction cells,
    and the nodes each cell concatenates into its output."""

    normal: list[tuple[str, int]]
    normal_concat: list[int]
    reduce: list[tuple[str, int]]
    reduce_concat: list[int]


def _check_genotype(genotype: Any) -> None:
    if not isinstance(genotype, Genotype) and not (isinstance(genotype, tuple) and len(genotype) == 4):
        raise InvalidArchError(f"expected a Genotype(normal, normal_concat, reduce, reduce_concat), got {genotype!r}")
    for name, cell in (("normal", genotype[0]), ("reduce", genotype[2])):
        if not cell or len(cell) % 2:
            raise InvalidArchError(f"genotype {name} cell must list two (op, input) pairs per node, got {len(cell)} entries")
        if len(cell) != len(genotype[0]):
            raise InvalidArchError("genotype normal and reduce cells must have the same number of nodes")
        for k, entry in enumerate(cell):
            node = 2 + k // 2
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and not isinstance(entry[1], bool)):
                raise InvalidArchError(f"genotype {name}[{k}] must be an (op name, input index) pair, got {entry!r}")
            if not 0 <= entry[1] < node:
                raise InvalidArchError(
                    f"genotype {name}[{k}] = {tuple(entry)!r}: node {node} can read states 0..{node - 1}, not {entry[1]}"
                )


def genotype_to_arch(genotype: Genotype) -> dict[str, Any]:
    """The arch dict (labels ``normal.op_i_j`` …) of a DARTS genotype. The concat lists are not
    part of the arch: a space concatenates all nodes (``merge_op='all'``) or its loose ends."""
    _check_genotype(genotype)
    arch: dict[str, Any] = {}
    for name, cell in (("normal", genotype[0]), ("reduce", genotype[2])):
        for k, (op, inp) in enumerate(cell):
            i, j = 2 + k // 2, k % 2
            arch[f"{name}.op_{i}_{j}"] = op
            arch[f"{name}.input_{i}_{j}"] = int(inp)
    return arch


def loose_ends(cell: Sequence[tuple[str, int]]) -> list[int]:
    """The nodes of a genotype cell that no op reads (what ``merge_op='loose_end'`` concatenates)."""
    num_nodes = len(cell) // 2
    used = {inp for _, inp in cell}
    return [n for n in range(2, 2 + num_nodes) if n not in used] or [1 + num_nodes]


def arch_to_genotype(arch: Mapping[str, Any], merge_op: str = "all") -> Genotype:
    """The DARTS genotype of an arch of :class:`DartsSpace` (concat lists follow ``merge_op``)."""
    if merge_op not in MERGE_OPS:
        raise ValueError(f"merge_op must be one of {MERGE_OPS}, got {merge_op!r}")
    cells = []
    for name in ("normal", "reduce"):
        cell = []
        i = 2
        while f"{name}.op_{i}_0" in arch:
            for j in range(2):
                try:
                    cell.append((arch[f"{name}.op_{i}_{j}"], int(arch[f"{name}.input_{i}_{j}"])))
                except KeyError as e:
                    raise InvalidArchError(f"arch is missing label {e.args[0]!r} of DARTS node {i}") from None
            i += 1
        if not cell:
            raise InvalidArchError(f"arch has no {name!r} cell labels (expected {name}.op_2_0, {name}.input_2_0, …)")
        concat = list(range(2, 2 + len(cell) // 2)) if merge_op == "all" else loose_ends(cell)
        cells.append((cell, concat))
    return Genotype(*cells[0], *cells[1])


# -- the network ----------------------------------------------------------------------------------

class _Preprocess(torch.nn.Module):
    """Brings the two previous cells' outputs to ``C`` channels (factorized reduce after a reduction)."""

    def __init__(self, C_pp: Any, C_p: Any, C: int, reduction_prev: bool):
        super().__init__()
        self.pre0 = ops.FactorizedReduce(C_pp, C) if reduction_prev else ops.ReLUConvBN(C_pp, C, 1, 1, 0)
        self.pre1 = ops.ReLUConvBN(C_p, C, 1, 1, 0)

    def forward(self, states):
        s0, s1 = states
        return [self.pre0(s0), self.pre1(s1)]


class AuxiliaryHead(torch.nn.Module):
    """DARTS' CIFAR auxiliary classifier (pooled to 2×2, 1×1 conv to 128, 2×2 conv to 768, linear)."""

    def __init__(self, C: Any, num_classes: int):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.ReLU(inplace=False),
            torch.nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C, 128, 1, bias=False),
            torch.nn.BatchNorm2d(128),
            torch.nn.ReLU(inplace=False),
            torch.nn.Conv2d(128, 768, 2, bias=False),
            torch.nn.BatchNorm2d(768),
            torch.nn.ReLU(inplace=False),
        )
        self.classifier = torch.nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _loose_end_count(label: str, num_nodes: int) -> Any:
    """How many nodes of cell ``label`` no op reads, as an int or a value expression over the
    cell's input choices (tied to them by label): ``Σ_n Π_{slots of later nodes} [input ≠ n]``,
    with ``[x ≠ n]`` written ``1 - 1 // (|x - n| + 1)`` in value-choice arithmetic."""
    count: Any = 0
    for node in range(2, 2 + num_nodes):
        free: Any = 1
        for i in range(node + 1, 2 + num_nodes):
            for j in range(2):
                x = nn.ValueChoice(list(range(i)), label=f"{label}.input_{i}_{j}")
                free = free * (1 - 1 // (abs(x - node) + 1))
        count = count + free
    return count


class DartsSpace(PresetMixin, nn.ModelSpace):
    """The DARTS CIFAR search space: a stem, ``layers`` cells, global pooling, a classifier.

    Arguments (DARTS' search setting: ``C=16, layers=8``; its evaluation setting: ``C=36,
    layers=20``; the defaults are CPU-sized):

    * ``C``: channels of the first cells (doubled at each reduction); the stem has
      ``stem_multiplier * C``;
    * ``layers``: number of cells; reductions at ``layers // 3`` and ``2 * layers // 3``;
    * ``num_nodes``: nodes per cell (4 in DARTS; 5 for the NASNet / AmoebaNet / PNASNet cells);
    * ``op_candidates``: op names of :mod:`nasforge.ops` (default :data:`DARTS_OPS`; ops on the
      two cell inputs of a reduction cell have stride 2);
    * ``merge_op``: ``"all"`` (DARTS: concatenate every node) or ``"loose_end"`` (NASNet: the
      nodes no op reads; the width of a cell then depends on the arch, which the space
      expresses with value choices, so it is searchable by multi-trial strategies only);
    * ``auxiliary``: add DARTS' auxiliary head after the second reduction; in training mode
      ``model.aux_logits`` then holds its logits (add ``0.4 * loss(model.aux_logits, y)``).

    Example::

        space = DartsSpace(C=8, layers=5, num_classes=10)
        arch = space.space.sample(0)
        net = space.freeze(arch)
        genotype = arch_to_genotype(arch)
        net = DartsSpace.preset("darts_v2")         # DARTS-V2 at C=36, 20 cells: 3.3 M parameters
    """

    def __init__(
        self,
        C: int = 8,
        layers: int = 5,
        num_nodes: int = 4,
        op_candidates: Sequence[str] = DARTS_OPS,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        auxiliary: bool = False,
        merge_op: str = "all",
    ):
        super().__init__()
        check_positive_int("DartsSpace", C=C, layers=layers, num_nodes=num_nodes, num_classes=num_classes,
                           in_channels=in_channels, stem_multiplier=stem_multiplier)
        if merge_op not in MERGE_OPS:
            raise ValueError(f"DartsSpace: merge_op must be one of {MERGE_OPS}, got {merge_op!r}")
        op_candidates = tuple(op_candidates)
        unknown = [o for o in op_candidates if o not in ops.OPS]
        if not op_candidates or unknown:
            raise ValueError(f"DartsSpace: unknown op(s) {unknown}; registered ops: {sorted(ops.OPS)}")
        self.C, self.layers, self.num_nodes = C, layers, num_nodes
        self.op_candidates, self.merge_op = op_candidates, merge_op
        C_curr = stem_multiplier * C
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), torch.nn.BatchNorm2d(C_curr)
        )
        C_pp: Any = C_curr
        C_p: Any = C_curr
        C_curr = C
        reductions = {layers // 3, 2 * layers // 3}
        self.cells = torch.nn.ModuleList()
        self.aux_head = None
        self._aux_pos = 2 * layers // 3
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            label = "reduce" if reduction else "normal"
            cell = nn.Cell(
                self._op_factories(label, C_curr, reduction),
                num_nodes,
                num_ops_per_node=2,
                num_predecessors=2,
                merge_op=merge_op,
                preprocessor=_Preprocess(C_pp, C_p, C_curr, reduction_prev),
                label=label,
            )
            self.cells.append(cell)
            width = num_nodes if merge_op == "all" else _loose_end_count(label, num_nodes)
            C_pp, C_p = C_p, width * C_curr
            reduction_prev = reduction
            if auxiliary and i == self._aux_pos:
                self.aux_head = AuxiliaryHead(C_p, num_classes)
        self.global_pooling = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.aux_logits: torch.Tensor | None = None

    def _op_factories(self, label: str, C: int, reduction: bool) -> dict[str, Any]:
        """One factory per op name, called by ``nn.Cell`` with (node, slot, input)."""

        def factory(name: str):
            def make(node: int, slot: int, inp: int) -> torch.nn.Module:
                stride = 2 if reduction and inp < 2 else 1
                op = fixed_value(f"{label}.op_{node}_{slot}")
                src = fixed_value(f"{label}.input_{node}_{slot}")
                if op is not MISSING and src is not MISSING and (op != name or src != inp):
                    return ops.Zero(stride)  # building a fixed arch: a candidate that is never chosen
                return ops.build_op(name, C, C, stride)

            return make

        return {name: factory(name) for name in self.op_candidates}

    def forward(self, x):
        self.aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell([s0, s1])
            if i == self._aux_pos and self.aux_head is not None and self.training:
                self.aux_logits = self.aux_head(s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    # -- genotypes ------------------------------------------------------------------------------
    def arch_to_genotype(self, arch: Mapping[str, Any]) -> Genotype:
        """The DARTS genotype of ``arch`` (checked against this space)."""
        return arch_to_genotype(self.space.validate(arch), self.merge_op)

    def genotype_to_arch(self, genotype: Genotype) -> dict[str, Any]:
        """The arch of ``genotype`` in this space; a clear error if the space cannot express it."""
        _check_genotype(genotype)
        if len(genotype[0]) // 2 != self.num_nodes:
            raise InvalidArchError(
                f"the genotype has {len(genotype[0]) // 2} nodes per cell; this DartsSpace has num_nodes={self.num_nodes}"
            )
        for name, cell, concat in (("normal", genotype[0], genotype[1]), ("reduce", genotype[2], genotype[3])):
            expected = list(range(2, 2 + self.num_nodes)) if self.merge_op == "all" else loose_ends(cell)
            if list(concat) != expected:
                raise InvalidArchError(
                    f"genotype {name}_concat {list(concat)} is not what merge_op={self.merge_op!r} concatenates "
                    f"({expected}); use DartsSpace.for_genotype(genotype) for a space that matches"
                )
        return self.space.validate(genotype_to_arch(genotype))

    @staticmethod
    def space_kwargs_for(genotype: Genotype) -> dict[str, Any]:
        """The structural arguments of a DartsSpace that contains ``genotype``: its number of
        nodes, DARTS' ops plus any other registered op it uses, and its merge rule."""
        _check_genotype(genotype)
        num_nodes = len(genotype[0]) // 2
        used = [op for cell in (genotype[0], genotype[2]) for op, _ in cell]
        unknown = sorted({op for op in used if op not in ops.OPS})
        if unknown:
            raise InvalidArchError(f"genotype uses op(s) {unknown} that nasforge.ops does not register")
        extra = tuple(dict.fromkeys(op for op in used if op not in DARTS_OPS))
        every = list(range(2, 2 + num_nodes))
        if list(genotype[1]) == every and list(genotype[3]) == every:
            merge = "all"
        elif list(genotype[1]) == loose_ends(genotype[0]) and list(genotype[3]) == loose_ends(genotype[2]):
            merge = "loose_end"
        else:
            raise InvalidArchError(
                "the genotype's concat lists are neither every node nor the loose ends; DartsSpace cannot express them"
            )
        return {"num_nodes": num_nodes, "op_candidates": DARTS_OPS + extra, "merge_op": merge}

    @classmethod
    def for_genotype(cls, genotype: Genotype, **kwargs: Any) -> DartsSpace:
        """A DartsSpace able to express ``genotype`` (see :meth:`space_kwargs_for`)."""
        return cls(**{**cls.space_kwargs_for(genotype), **kwargs})

    @classmethod
    def build_genotype(cls, genotype: Genotype, **kwargs: Any) -> torch.nn.Module:
        """The plain network of ``genotype`` (e.g. ``C=36, layers=20`` for DARTS' CIFAR setting)."""
        return cls.build(genotype_to_arch(genotype), **{**cls.space_kwargs_for(genotype), **kwargs})
