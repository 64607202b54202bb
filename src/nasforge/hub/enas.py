"""The ENAS macro search space (Pham et al., ICML 2018): a chain of layers, each choosing an op
and which earlier layers to add through skip connections."""

from __future__ import annotations

from collections.abc import Sequence

import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.hub._common import PresetMixin, check_positive_int, layer_choice

__all__ = ["EnasMacroSpace", "ENAS_MACRO_OPS"]

#: The six branches of the ENAS macro space (conv 3×3/5×5, separable conv 3×3/5×5, max/avg pool).
ENAS_MACRO_OPS: tuple[str, ...] = ops.op_names("enas")


class EnasMacroSpace(PresetMixin, nn.ModelSpace):
    """ENAS' macro space: ``num_layers`` layers after a 3×3 conv stem, all ``out_filters`` wide.

    Layer ``i`` (1-based) chooses an op (label ``layer_<i>``, one of :data:`ENAS_MACRO_OPS`) applied
    to the previous layer's output, and for every earlier layer ``k < i - 1`` (0 is the stem)
    whether to add its output (label ``skip_<i>_<k>``: ``"none"`` or ``"skip_connect"``); the sum is
    batch-normalised. After layers ``num_layers // 3`` and ``2 * num_layers // 3`` every kept output
    is halved in resolution by a factorized reduction. Global average pooling, dropout, linear.

    ENAS searched ``num_layers=12`` (NNI's example: ``out_filters=24``); the defaults are
    CPU-sized. ``out_filters`` must be even (the factorized reductions halve it per branch).
    """

    def __init__(
        self,
        num_layers: int = 6,
        out_filters: int = 12,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.1,
        op_candidates: Sequence[str] = ENAS_MACRO_OPS,
    ):
        super().__init__()
        check_positive_int("EnasMacroSpace", num_layers=num_layers, out_filters=out_filters,
                           num_classes=num_classes, in_channels=in_channels)
        unknown = [o for o in op_candidates if o not in ops.OPS]
        if not op_candidates or unknown:
            raise ValueError(f"EnasMacroSpace: unknown op(s) {unknown}; ENAS' ops are {list(ENAS_MACRO_OPS)}")
        C = out_filters
        self.num_layers = num_layers
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(in_channels, C, 3, padding=1, bias=False), torch.nn.BatchNorm2d(C))
        self.pool_after = sorted({num_layers // 3, 2 * num_layers // 3} - {0, num_layers})
        self.layers = torch.nn.ModuleList()
        self.skips = torch.nn.ModuleList()
        self.bns = torch.nn.ModuleList()
        for i in range(1, num_layers + 1):
            self.layers.append(layer_choice({name: ops.build_op(name, C, C) for name in op_candidates}, f"layer_{i}"))
            self.skips.append(torch.nn.ModuleList(
                layer_choice({"none": ops.Zero(), "skip_connect": ops.build_op("skip_connect", C, C)}, f"skip_{i}_{k}")
                for k in range(i - 1)
            ))
            self.bns.append(torch.nn.BatchNorm2d(C))
        self.reduce = torch.nn.ModuleDict({
            str(p): torch.nn.ModuleList(ops.FactorizedReduce(C, C) for _ in range(p + 1)) for p in self.pool_after
        })
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(C, num_classes)

    def forward(self, x):
        outs = [self.stem(x)]
        for i in range(1, self.num_layers + 1):
            out = self.layers[i - 1](outs[-1])
            for k, skip in enumerate(self.skips[i - 1]):
                out = out + skip(outs[k])
            outs.append(self.bns[i - 1](out))
            if i in self.pool_after:
                outs = [fr(o) for fr, o in zip(self.reduce[str(i)], outs)]
        return self.classifier(self.dropout(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(outs[-1], 1), 1)))
