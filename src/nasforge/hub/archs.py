"""The published architectures of the hub spaces, as named archs.

Each constant is a :class:`PublishedArch`: the arch dict, the hub space it belongs to, the
structural arguments that space needs for it (``space_kwargs``) and the paper's evaluation
setting (``setting``). ``build()`` gives the plain network at the paper's setting (keyword
arguments override it), ``model_space()`` a space containing the arch (to start a search from
it), and for DARTS cells ``genotype`` is the DARTS genotype::

    from nasforge.hub import archs

    net = archs.MOBILENET_V3_LARGE.build()                 # 5.4 M parameters, 1,000 classes
    net = archs.DARTS_V2.build(num_classes=100)            # DARTS-V2 at C=36, 20 cells
    space = archs.NASNET_A.model_space(C=8, layers=5)      # a DartsSpace with 5-node, loose-end cells
    archs.NASNET_A.arch                                    # {'normal.op_2_0': 'sep_conv_5x5', …}

Labels of a block that an arch skips (``"skip"``) are present with their first candidate, since
today's spaces list every label (their value does not change the network).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

import nasforge.nn as nn
from nasforge.hub.darts import DartsSpace, Genotype, genotype_to_arch
from nasforge.hub.mobilenet import (
    LARGE_STAGES,
    SMALL_STAGES,
    V3_EXPAND_RATIOS,
    MobileNetV3Space,
    ProxylessSpace,
    _ratio_name,
)
from nasforge.hub.rnn import RnnCellSpace, RnnGenotype, rnn_genotype_to_arch
from nasforge.ops import make_divisible

__all__ = [
    "ALL",
    "PublishedArch",
    "DARTS_V1",
    "DARTS_V2",
    "NASNET_A",
    "AMOEBANET_A",
    "PNASNET_5",
    "ENAS",
    "MOBILENET_V3_LARGE",
    "MOBILENET_V3_SMALL",
    "MOBILENET_V2",
    "DARTS_V1_RNN",
    "DARTS_V2_RNN",
]


@dataclass(frozen=True, eq=False)
class PublishedArch:
    """A published network as a point of a hub space."""

    name: str
    space: type[nn.ModelSpace]
    arch: Mapping[str, Any]
    space_kwargs: Mapping[str, Any] = field(default_factory=dict)
    setting: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    genotype: Any = None
    notes: str = ""

    def __post_init__(self) -> None:
        for name in ("arch", "space_kwargs", "setting"):  # read-only copies
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def model_space(self, **kwargs: Any):
        """A space containing this arch (``kwargs``: sizes, e.g. ``C=8, layers=5``)."""
        return self.space(**{**self.space_kwargs, **kwargs})

    def build(self, **kwargs: Any) -> torch.nn.Module:
        """The plain network at the paper's setting; ``kwargs`` override it (e.g. ``num_classes=10``)."""
        return self.space.build(dict(self.arch), **{**self.space_kwargs, **self.setting, **kwargs})

    def __repr__(self) -> str:
        return f"PublishedArch({self.name!r}, space={self.space.__name__}, source={self.source!r})"


# -- DARTS cells ----------------------------------------------------------------------------------------

_DARTS_CIFAR = {"C": 36, "layers": 20, "num_classes": 10}


def _darts(name: str, genotype: Genotype, source: str, notes: str = "") -> PublishedArch:
    return PublishedArch(name, DartsSpace, genotype_to_arch(genotype), DartsSpace.space_kwargs_for(genotype),
                         _DARTS_CIFAR, source, genotype, notes)


DARTS_V1 = _darts("darts_v1", Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5]),
    "DARTS first order (Liu, Simonyan & Yang, ICLR 2019), CIFAR-10 cell; 3.3 M parameters at C=36, 20 cells")

DARTS_V2 = _darts("darts_v2", Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5]),
    "DARTS second order (Liu, Simonyan & Yang, ICLR 2019), CIFAR-10 cell; 3.3 M parameters at C=36, 20 cells")

_OUTSIDE = "uses op(s) outside DARTS' eight: {} (registered in nasforge.ops, as DARTS' evaluation code defines them)"

NASNET_A = _darts("nasnet_a", Genotype(
    normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 1), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
            ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
            ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
    reduce_concat=[4, 5, 6]),
    "NASNet-A (Zoph, Vasudevan, Shlens & Le, CVPR 2018) as the DARTS code writes it",
    _OUTSIDE.format("sep_conv_7x7") + "; 5 nodes per cell, loose ends concatenated")

AMOEBANET_A = _darts("amoebanet_a", Genotype(
    normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 1)],
    normal_concat=[4, 5, 6],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
            ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
    reduce_concat=[3, 4, 6]),
    "AmoebaNet-A (Real, Aggarwal, Huang & Le, AAAI 2019) as the DARTS code writes it",
    _OUTSIDE.format("sep_conv_7x7, conv_7x1_1x7") + "; 5 nodes per cell, loose ends concatenated")

_PNAS_CELL = [("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
              ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
              ("sep_conv_3x3", 0), ("skip_connect", 1)]
PNASNET_5 = _darts("pnasnet_5", Genotype(
    normal=_PNAS_CELL, normal_concat=[2, 3, 4, 5, 6], reduce=list(_PNAS_CELL), reduce_concat=[2, 3, 4, 5, 6]),
    "PNASNet-5 (Liu et al., ECCV 2018): one cell, used for normal and reduction (stride 2 on the cell inputs)",
    _OUTSIDE.format("sep_conv_7x7") + "; 5 nodes per cell, every node concatenated")

ENAS = _darts("enas", Genotype(
    normal=[("sep_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 1), ("skip_connect", 0),
            ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("avg_pool_3x3", 0)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 1), ("avg_pool_3x3", 1), ("sep_conv_5x5", 4), ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 5), ("sep_conv_5x5", 0)],
    reduce_concat=[2, 3, 6]),
    "ENAS micro cell (Pham, Guan, Zoph, Le & Dean, ICML 2018), CIFAR-10, as a DARTS genotype",
    "5 nodes per cell, loose ends concatenated; ENAS' own identity op is skip_connect")


# -- MobileNets ------------------------------------------------------------------------------------------

# (C_in, kernel, expanded, squeeze-excite, activation) per block, from the papers' tables.
_V3_LARGE_ROWS = [
    (16, 3, 16, False, "relu"),
    (16, 3, 64, False, "relu"), (24, 3, 72, False, "relu"),
    (24, 5, 72, True, "relu"), (40, 5, 120, True, "relu"), (40, 5, 120, True, "relu"),
    (40, 3, 240, False, "hswish"), (80, 3, 200, False, "hswish"), (80, 3, 184, False, "hswish"), (80, 3, 184, False, "hswish"),
    (80, 3, 480, True, "hswish"), (112, 3, 672, True, "hswish"),
    (112, 5, 672, True, "hswish"), (160, 5, 960, True, "hswish"), (160, 5, 960, True, "hswish"),
]
_V3_SMALL_ROWS = [
    (16, 3, 16, True, "relu"),
    (16, 3, 72, False, "relu"), (24, 3, 88, False, "relu"),
    (24, 5, 96, True, "hswish"), (40, 5, 240, True, "hswish"), (40, 5, 240, True, "hswish"),
    (40, 5, 120, True, "hswish"), (48, 5, 144, True, "hswish"),
    (48, 5, 288, True, "hswish"), (96, 5, 576, True, "hswish"), (96, 5, 576, True, "hswish"),
]


def _v3_arch(rows: list[tuple], depths: tuple[int, ...], stages) -> dict[str, Any]:
    arch: dict[str, Any] = {}
    remaining = iter(rows)
    for i, (_, n, _) in enumerate(stages):
        for j in range(n):
            label = f"s{i}_b{j}"
            if j < depths[i]:
                c_in, k, expanded, se, act = next(remaining)
                ratios = [r for r in V3_EXPAND_RATIOS if (c_in if r == 1 else make_divisible(c_in * r, 8)) == expanded]
                arch[label] = _ratio_name(ratios[0])
                arch.update({f"{label}.kernel": f"k{k}", f"{label}.se": "on" if se else "off", f"{label}.act": act})
            else:
                arch[label] = "skip"
                arch.update({f"{label}.kernel": "k3", f"{label}.se": "off", f"{label}.act": "relu"})
    return arch


_IMAGENET = {"num_classes": 1000, "width_mult": 1.0}

MOBILENET_V3_LARGE = PublishedArch(
    "large", MobileNetV3Space, _v3_arch(_V3_LARGE_ROWS, (1, 2, 3, 4, 2, 3), LARGE_STAGES), {"stages": LARGE_STAGES},
    _IMAGENET, "MobileNetV3-Large 1.0 (Howard et al., ICCV 2019), 224×224: 5.4 M parameters, 219 M multiply-adds")
MOBILENET_V3_SMALL = PublishedArch(
    "small", MobileNetV3Space, _v3_arch(_V3_SMALL_ROWS, (1, 2, 3, 2, 3), SMALL_STAGES), {"stages": SMALL_STAGES},
    _IMAGENET, "MobileNetV3-Small 1.0 (Howard et al., ICCV 2019), 224×224: 2.5 M parameters, 56 M multiply-adds")


def _mobilenet_v2_arch(depths: tuple[int, ...] = (2, 3, 4, 3, 3, 1)) -> dict[str, Any]:
    return {f"s{i}_b{j}": "k3_e6" if j < d else "skip"
            for i, d in enumerate(depths) for j in range(ProxylessSpace.stage_blocks(i))}


MOBILENET_V2 = PublishedArch(
    "mobilenet_v2", ProxylessSpace, _mobilenet_v2_arch(), {}, _IMAGENET,
    "MobileNetV2 1.0 (Sandler et al., CVPR 2018), 224×224: 3.5 M parameters, 300 M multiply-adds")


# -- recurrent cells ---------------------------------------------------------------------------------------

_PTB = {"vocab_size": 10000, "input_size": 850, "hidden_size": 850, "task": "lm"}

DARTS_V1_RNN = PublishedArch(
    "darts_v1", RnnCellSpace, rnn_genotype_to_arch(RnnGenotype(
        [("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5), ("relu", 1)],
        list(range(1, 9)))), {"num_nodes": 8}, _PTB,
    "DARTS first order (Liu, Simonyan & Yang, ICLR 2019), PTB recurrent cell")
DARTS_V2_RNN = PublishedArch(
    "darts_v2", RnnCellSpace, rnn_genotype_to_arch(RnnGenotype(
        [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5), ("tanh", 3), ("relu", 5)],
        list(range(1, 9)))), {"num_nodes": 8}, _PTB,
    "DARTS second order (Liu, Simonyan & Yang, ICLR 2019), PTB recurrent cell")

#: Every published arch by constant name.
ALL: dict[str, PublishedArch] = {
    name: value for name, value in dict(globals()).items() if isinstance(value, PublishedArch)
}
