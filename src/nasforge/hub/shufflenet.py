"""The SPOS search space (Guo et al., ECCV 2020): ShuffleNetV2-style stages of choice blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.hub._common import PresetMixin, check_positive_int, layer_choice

__all__ = ["ShuffleNetSpace", "SHUFFLENET_OPS"]

#: SPOS' four choice blocks: ShuffleNetV2 units with 3×3, 5×5, 7×7 depthwise convs, and the Xception-like unit.
SHUFFLENET_OPS: tuple[str, ...] = ops.op_names("shufflenet")


class ShuffleNetSpace(PresetMixin, nn.ModelSpace):
    """SPOS' single-path supernet space: a 3×3 stem (stride 2), stages of choice blocks (the first
    of each stage has stride 2), a 1×1 conv to ``last_channels``, global pooling, dropout, linear.

    Block ``s<i>_b<j>`` chooses one of :data:`SHUFFLENET_OPS`. SPOS' ImageNet setting:
    ``stage_repeats=(4, 4, 8, 4), stage_channels=(64, 160, 320, 640), last_channels=1024,
    stem_channels=16`` (4^20 ≈ 10^12 archs); the defaults are CPU-sized.
    """

    def __init__(
        self,
        num_classes: int = 10,
        stage_repeats: Sequence[int] = (2, 2, 4, 2),
        stage_channels: Sequence[int] = (32, 64, 128, 256),
        last_channels: int = 512,
        stem_channels: int = 16,
        in_channels: int = 3,
        dropout: float = 0.1,
        op_candidates: Sequence[str] = SHUFFLENET_OPS,
    ):
        super().__init__()
        check_positive_int("ShuffleNetSpace", num_classes=num_classes, last_channels=last_channels,
                           stem_channels=stem_channels, in_channels=in_channels)
        if len(stage_repeats) != len(stage_channels) or not stage_repeats:
            raise ValueError(f"ShuffleNetSpace: stage_repeats {tuple(stage_repeats)} and stage_channels "
                             f"{tuple(stage_channels)} must be non-empty and of equal length")
        unknown = [o for o in op_candidates if o not in ops.OPS]
        if not op_candidates or unknown:
            raise ValueError(f"ShuffleNetSpace: unknown op(s) {unknown}; SPOS' ops are {list(SHUFFLENET_OPS)}")
        C = stem_channels
        for c in stage_channels:
            if c % 2 or c <= C:
                raise ValueError(f"ShuffleNetSpace: stage widths must be even and increasing from the stem's {stem_channels}, "
                                 f"got {tuple(stage_channels)}")
            C = c
        C = stem_channels
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(in_channels, C, 3, stride=2, padding=1, bias=False),
                                        torch.nn.BatchNorm2d(C), torch.nn.ReLU(inplace=False))
        blocks = []
        for i, (n, c_out) in enumerate(zip(stage_repeats, stage_channels)):
            for j in range(n):
                stride = 2 if j == 0 else 1
                blocks.append(layer_choice({name: ops.build_op(name, C, c_out, stride) for name in op_candidates},
                                           f"s{i}_b{j}"))
                C = c_out
        self.blocks = torch.nn.Sequential(*blocks)
        self.last_conv = torch.nn.Sequential(torch.nn.Conv2d(C, last_channels, 1, bias=False),
                                             torch.nn.BatchNorm2d(last_channels), torch.nn.ReLU(inplace=False))
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(last_channels, num_classes, bias=False)

    def forward(self, x):
        x = self.last_conv(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)))
