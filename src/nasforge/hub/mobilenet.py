"""Stages of inverted-residual blocks: ``ProxylessSpace`` (ProxylessNAS) and ``MobileNetV3Space``.

Both are written with ``LayerChoice`` over whole candidate blocks, so the ProxylessNAS and SPOS
one-shot trainers share weights over them: block ``j`` of stage ``i`` is labelled ``s<i>_b<j>``;
the first block of a stage is always there, the others may be ``"skip"`` (the stage is then
shallower). Width multipliers are constructor arguments (a searched width would be a value
choice, which the one-shot trainers do not share weights over).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.hub._common import PresetMixin, check_positive_int, layer_choice

__all__ = ["ProxylessSpace", "MobileNetV3Space", "PROXYLESS_STAGES", "LARGE_STAGES", "SMALL_STAGES"]


class _Identity(torch.nn.Module):
    """The ``skip`` candidate of an optional block (the block is left out)."""

    def forward(self, x):
        return x


def _conv_bn_act(C_in: int, C_out: int, kernel: int, stride: int, act: str) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        torch.nn.BatchNorm2d(C_out),
        ops.activation(act),
    )


def _check_arguments(owner: str, stages: Any, width_mult: Any, **positive: Any) -> list[tuple]:
    """Check what both spaces take; returns the stages as tuples."""
    check_positive_int(owner, **positive)
    if not width_mult > 0:
        raise ValueError(f"{owner}: width_mult must be > 0, got {width_mult!r}")
    out = []
    for s in stages:
        if not (isinstance(s, (tuple, list)) and len(s) == 3 and all(isinstance(v, int) and v > 0 for v in s) and s[2] in (1, 2)):
            raise ValueError(f"{owner}: each stage must be (out_channels, max_blocks, stride in {{1, 2}}), got {s!r}")
        out.append(tuple(s))
    if not out:
        raise ValueError(f"{owner}: at least one stage is needed")
    return out


def _ratio_name(r: float) -> str:
    return "e" + (str(int(r)) if float(r).is_integer() else str(r).replace(".", "_"))


# -- ProxylessNAS ------------------------------------------------------------------------------------

#: MobileNetV2's stage widths and strides (ProxylessNAS' backbone), up to 4 blocks per stage.
PROXYLESS_STAGES: tuple[tuple[int, int, int], ...] = ((24, 4, 2), (32, 4, 2), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1))


class ProxylessSpace(PresetMixin, nn.ModelSpace):
    """ProxylessNAS' mobile search space (Cai, Zhu & Han, ICLR 2019) on MobileNetV2's backbone.

    Stem (3×3 conv, 32 channels, stride 2), a fixed MBConv1 3×3 block to 16 channels, then
    ``stages`` of up to ``max_blocks`` MBConv blocks; each block chooses its kernel (3, 5, 7) and
    expansion ratio (3, 6) as one of the candidates ``k<kernel>_e<ratio>``, and every block but
    the first of a stage may also be ``skip``; a 1×1 conv to 1,280 channels, global pooling,
    dropout and a linear classifier. ReLU6 activations. ``width_mult`` scales every width
    (rounded to multiples of 8). MobileNetV2-1.0 is the arch with ``k3_e6`` blocks and stage
    depths 2, 3, 4, 3, 3, 1 (``ProxylessSpace.preset("mobilenet_v2")``: 3.5 M parameters,
    300 M multiply-adds at 224×224).

    The defaults are CPU-sized (``width_mult=0.25``, 10 classes); ProxylessNAS: ``width_mult=1.0``
    (or 1.3 / 1.4), ``num_classes=1000``, 224×224 inputs.
    """

    def __init__(
        self,
        num_classes: int = 10,
        width_mult: float = 0.25,
        stages: Sequence[tuple[int, int, int]] = PROXYLESS_STAGES,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = (3, 6),
        in_channels: int = 3,
        dropout: float = 0.2,
        stem_channels: int = 32,
        first_block_channels: int = 16,
        last_channels: int = 1280,
    ):
        super().__init__()
        stages = _check_arguments("ProxylessSpace", stages, width_mult, num_classes=num_classes,
                                  in_channels=in_channels)
        self.candidate_names = [f"k{k}_{_ratio_name(e)}" for k in kernel_sizes for e in expand_ratios]
        if not self.candidate_names:
            raise ValueError("ProxylessSpace: kernel_sizes and expand_ratios must not be empty")
        width = lambda c: ops.make_divisible(c * width_mult, 8)  # noqa: E731
        C = width(stem_channels)
        self.stem = _conv_bn_act(in_channels, C, 3, 2, "relu6")
        first = width(first_block_channels)
        self.first_block = ops.InvertedResidual(C, first, 3, 1, 1, activation="relu6")
        C = first
        blocks = []
        for i, (c_out, n, stride) in enumerate(stages):
            c_out = width(c_out)
            for j in range(n):
                s = stride if j == 0 else 1
                candidates: dict[str, torch.nn.Module] = {
                    f"k{k}_{_ratio_name(e)}": ops.InvertedResidual(C, c_out, k, s, e, activation="relu6")
                    for k in kernel_sizes for e in expand_ratios
                }
                if j > 0:
                    candidates["skip"] = _Identity()
                blocks.append(layer_choice(candidates, f"s{i}_b{j}"))
                C = c_out
        self.blocks = torch.nn.Sequential(*blocks)
        last = ops.make_divisible(last_channels * max(1.0, width_mult), 8)
        self.feature_mix = _conv_bn_act(C, last, 1, 1, "relu6")
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(last, num_classes))

    @staticmethod
    def stage_blocks(stage: int, stages: Sequence[tuple[int, int, int]] = PROXYLESS_STAGES) -> int:
        """The number of block labels of ``stage`` (``s<stage>_b0`` …)."""
        return stages[stage][1]

    def forward(self, x):
        x = self.feature_mix(self.blocks(self.first_block(self.stem(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))


# -- MobileNetV3 ---------------------------------------------------------------------------------------

#: MobileNetV3-Large's stage widths and strides; up to 4 blocks per stage (the published net has 1, 2, 3, 4, 2, 3).
LARGE_STAGES: tuple[tuple[int, int, int], ...] = ((16, 1, 1), (24, 4, 2), (40, 4, 2), (80, 4, 2), (112, 4, 1), (160, 4, 2))
#: MobileNetV3-Small's (the published net has 1, 2, 3, 2, 3 blocks).
SMALL_STAGES: tuple[tuple[int, int, int], ...] = ((16, 1, 2), (24, 4, 2), (40, 4, 2), (48, 4, 1), (96, 4, 2))
#: Expansion ratios whose rounded widths (``make_divisible(C_in * r, 8)``) include every block of
#: MobileNetV3-Large and -Small (their widths were tuned by NetAdapt: e.g. 184 = 80 × 2.3).
V3_EXPAND_RATIOS: tuple[float, ...] = (1, 2.3, 2.5, 3, 3.67, 4, 4.5, 6)


class _DepthwiseBN(torch.nn.Sequential):
    def __init__(self, C: int, kernel: int, stride: int):
        super().__init__(torch.nn.Conv2d(C, C, kernel, stride=stride, padding=kernel // 2, groups=C, bias=False),
                         torch.nn.BatchNorm2d(C))


class MobileNetV3Space(PresetMixin, nn.ModelSpace):
    """MobileNetV3's search space (Howard et al., ICCV 2019): stages of inverted-residual blocks.

    Block ``s<i>_b<j>`` chooses its expansion ratio (candidates ``e<ratio>``, e.g. ``e4``,
    ``e2_3`` for 2.3, see :data:`V3_EXPAND_RATIOS`; ``skip`` too for all but a stage's first
    block); inside it, tied across the expansion candidates, ``s<i>_b<j>.kernel`` (``k3``,
    ``k5``, ``k7``), ``s<i>_b<j>.se`` (squeeze-excite ``off`` / ``on``) and
    ``s<i>_b<j>.act`` (``relu`` / ``hswish``). Stem: 3×3 conv to 16, stride 2, h-swish; head: 1×1
    conv to 6× the last width, h-swish, global pooling, linear to ``head_channels`` (1,280 for
    Large, 1,024 for Small), h-swish, dropout, linear classifier.

    ``stages`` is :data:`LARGE_STAGES` (default) or :data:`SMALL_STAGES` or your own list of
    ``(out_channels, max_blocks, stride)``. Published nets: ``MobileNetV3Space.preset("large")``
    (5.4 M parameters, 219 M multiply-adds at 224×224) and ``preset("small")`` (2.5 M / 56 M).
    The defaults are CPU-sized (``width_mult=0.25``, 10 classes).
    """

    def __init__(
        self,
        num_classes: int = 10,
        width_mult: float = 0.25,
        stages: Sequence[tuple[int, int, int]] = LARGE_STAGES,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = V3_EXPAND_RATIOS,
        head_channels: int | None = None,
        in_channels: int = 3,
        dropout: float = 0.2,
        stem_channels: int = 16,
    ):
        super().__init__()
        stages = _check_arguments("MobileNetV3Space", stages, width_mult, num_classes=num_classes,
                                  in_channels=in_channels)
        if not kernel_sizes or not expand_ratios:
            raise ValueError("MobileNetV3Space: kernel_sizes and expand_ratios must not be empty")
        if head_channels is None:
            head_channels = 1024 if tuple(stages) == SMALL_STAGES else 1280
        width = lambda c: ops.make_divisible(c * width_mult, 8)  # noqa: E731
        C = width(stem_channels)
        self.stem = _conv_bn_act(in_channels, C, 3, 2, "hswish")
        blocks = []
        for i, (c_out, n, stride) in enumerate(stages):
            c_out = width(c_out)
            for j in range(n):
                label = f"s{i}_b{j}"
                s = stride if j == 0 else 1
                candidates = {_ratio_name(e): self._block(label, C, c_out, s, e, kernel_sizes) for e in expand_ratios}
                if j > 0:
                    # a skipped block has no kernel / se / act: those labels are inactive then
                    candidates["skip"] = _Identity()
                blocks.append(layer_choice(candidates, label))
                C = c_out
        self.blocks = torch.nn.Sequential(*blocks)
        last = 6 * C
        self.last_conv = _conv_bn_act(C, last, 1, 1, "hswish")
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        head = ops.make_divisible(head_channels * width_mult, 8)
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(last, head), torch.nn.Hardswish(), torch.nn.Dropout(dropout), torch.nn.Linear(head, num_classes)
        )

    @staticmethod
    def _block(label: str, C_in: int, C_out: int, stride: int, ratio: float, kernel_sizes: Sequence[int]):
        def kernel(channels: int, s: int) -> torch.nn.Module:
            return layer_choice({f"k{k}": _DepthwiseBN(channels, k, s) for k in kernel_sizes}, f"{label}.kernel")

        def se(channels: int) -> torch.nn.Module:
            return layer_choice({"off": _Identity(), "on": ops.SqueezeExcite(channels)}, f"{label}.se")

        def act() -> torch.nn.Module:
            return layer_choice({"relu": torch.nn.ReLU(inplace=False), "hswish": torch.nn.Hardswish()}, f"{label}.act")

        return ops.InvertedResidual(C_in, C_out, kernel, stride, ratio, se=se, activation=act)

    def forward(self, x):
        x = self.last_conv(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))

