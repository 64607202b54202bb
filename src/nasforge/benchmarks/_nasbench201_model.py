"""The NAS-Bench-201 network as a nasforge model space (imports torch; loaded lazily)."""

from __future__ import annotations

from collections import OrderedDict

import torch

import nasforge.nn as nn
from nasforge.benchmarks.nasbench201 import EDGES

__all__ = ["NasBench201Space", "ReLUConvBN", "ResNetBasicBlock", "Zero"]


class ReLUConvBN(torch.nn.Module):
    """ReLU → Conv2d (no bias) → BatchNorm, NAS-Bench-201's convolution op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.op = torch.nn.Sequential(
            torch.nn.ReLU(inplace=False),
            torch.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            torch.nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(torch.nn.Module):
    """The ``none`` op: the edge carries nothing (zeros of the input's shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ResNetBasicBlock(torch.nn.Module):
    """The residual reduction block between stages (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = torch.nn.Sequential(
            torch.nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            torch.nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _edge_ops(c: int) -> OrderedDict[str, torch.nn.Module]:
    """The candidates of an edge, named and ordered as :data:`OPS` (tests/test_nasbench201.py checks)."""
    return OrderedDict(
        none=Zero(),
        skip_connect=torch.nn.Identity(),
        nor_conv_1x1=ReLUConvBN(c, c, 1, 1, 0),
        nor_conv_3x3=ReLUConvBN(c, c, 3, 1, 1),
        avg_pool_3x3=torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    )


class NasBench201Cell(torch.nn.Module):
    """4-node DAG: node j = Σ_{i<j} op_j_i(node_i); the output is node 3.

    Each edge is a :class:`nasforge.nn.LayerChoice` labelled ``op_<j>_<i>``; every cell of
    the network uses the same labels, so one arch decides all cells (as in NAS-Bench-201).
    """

    def __init__(self, c: int):
        super().__init__()
        self.edges = torch.nn.ModuleDict(
            {f"{j}_{i}": nn.LayerChoice(_edge_ops(c), label=f"op_{j}_{i}") for j, i in EDGES}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[f"{j}_{i}"](nodes[i]) for i in range(j)))
        return nodes[3]


class NasBench201Space(nn.ModelSpace):
    """The NAS-Bench-201 network: 3×3 conv stem, three stages of ``N`` cells (``C``, ``2C``,
    ``4C`` channels) with residual reduction blocks between them, BN-ReLU, global average
    pooling and a linear classifier.

    ``model.space`` has the labels ``op_1_0, op_2_0, op_2_1, op_3_0, op_3_1, op_3_2`` (values
    :data:`~nasforge.benchmarks.nasbench201.OPS`), the same as
    :func:`~nasforge.benchmarks.nasbench201.nasbench201_space`.

    Example::

        model_space = NasBench201Space(C=16, N=5, num_classes=10)
        net = model_space.freeze(arch_from_string("|nor_conv_3x3~0|+|...|"))
        logits = net(torch.randn(2, 3, 32, 32))
    """

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        for name, v in (("C", C), ("N", N), ("num_classes", num_classes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"NasBench201Space: {name} must be a positive integer, got {v!r}")
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, C, 3, padding=1, bias=False), torch.nn.BatchNorm2d(C))
        layers: list[torch.nn.Module] = []
        c = C
        for stage in range(3):
            if stage:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(NasBench201Cell(c) for _ in range(N))
        self.cells = torch.nn.Sequential(*layers)
        self.lastact = torch.nn.Sequential(torch.nn.BatchNorm2d(c), torch.nn.ReLU(inplace=True))
        self.global_pooling = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(out), 1))
